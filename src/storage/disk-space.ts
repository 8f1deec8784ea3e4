/** @module storage/disk-space — the store's free space: a reserve file that keeps metadata writable on a full disk, released and re-created as space goes and comes. */
import { open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isDiskFull } from '../oci/errors.js';
import { StoreLayout } from './layout.js';

/** A reserve takes at most this share of the file system: a small store keeps the rest for content. */
const MAX_SHARE = 1 / 8;
/** Without a reserve (storage.reserve: 0), readiness still wants this much free (capped by the share above). */
const MIN_FREE = 1024 * 1024;
const CHUNK = 1024 * 1024;
/** A released reserve is tried again this often (a statfs while it is away, nothing while it is held). */
const DEFAULT_RETRY_MS = 2_000;

export interface SpaceFigures {
  readonly free: number;
  readonly total: number;
}

export interface DiskSpaceDeps {
  readonly root: string;
  /** storage.reserve in bytes; 0 turns the reserve off. */
  readonly reserve: number;
  readonly logger: Logger;
  /** How often a released reserve is tried again (besides after eviction and on readiness checks). */
  readonly retryMs?: number;
  /** Free and total bytes of the store's file system (statfs; tests pass their own). */
  readonly space?: (root: string) => Promise<SpaceFigures>;
}

/** What /readyz says about the disk. */
export interface DiskReport {
  readonly ok: boolean;
  readonly freeBytes: number;
  readonly reserveBytes: number;
  readonly reserveHeld: boolean;
  readonly message?: string;
  readonly fix?: string;
}

/**
 * Why a reserve file rather than SQLite on a guarded path: the store is the one file system the
 * operator gives berth, so there is no other path to guard, and SQLite cannot allocate its files
 * ahead (its WAL and WAL index grow as it writes; opening a database on a full disk already
 * fails). Zeros berth wrote itself are space nothing else can take, and deleting them frees that
 * space at once for whichever process of the store needs it. Without it one full disk fails every
 * metadata write, the DELETE that would free space included, and the next start.
 */
export class DiskSpace {
  private readonly layout: StoreLayout;
  /** The reserve in effect: storage.reserve, at most MAX_SHARE of the file system. */
  private bytes = 0;
  private need = MIN_FREE;
  private timer: NodeJS.Timeout | undefined;
  private restoring: Promise<boolean> | undefined;
  private readonly freers: Array<() => Promise<unknown>> = [];
  /** One warning per episode of a full disk, not one per request. */
  private warned = false;

  constructor(private readonly deps: DiskSpaceDeps) {
    this.layout = new StoreLayout(deps.root);
  }

  get reserveBytes(): number {
    return this.bytes;
  }

  /**
   * Sizes the reserve for this file system and writes it when there is room (else later).
   * `inBackground`: resolves once sized, and the reserve is written meanwhile; a first start
   * (writing it and its fsync) then does not wait for the disk before listening.
   */
  async init(inBackground = false): Promise<void> {
    const { total } = await this.figures();
    const cap = Math.floor((total * MAX_SHARE) / 4096) * 4096;
    this.bytes = Math.min(this.deps.reserve, cap);
    this.need = this.bytes > 0 ? this.bytes : Math.min(MIN_FREE, cap);
    const placed = this.restore().then(
      (held) => {
        if (!held) this.retryLater();
      },
      (err: Error) => {
        if (!inBackground) throw err;
        this.deps.logger.warn({ err: err.message }, 'could not write the space reserve');
        this.retryLater();
      },
    );
    if (!inBackground) await placed;
  }

  /** Work that can free space (eviction), run when a write meets a full disk and when readiness finds too little free. */
  onFull(free: () => Promise<unknown>): void {
    this.freers.push(free);
  }

  /**
   * A write met a full disk: what can free space runs and the reserve is tried again later.
   * Never throws; callers do not wait for it (the request answers 507 at once).
   */
  /** met() for callers that cannot wait for it: what it fails at is logged, never left unhandled. */
  noteFull(where: string, err: unknown): void {
    this.met(where, err).catch((e: Error) => this.deps.logger.warn({ where, err: e.message }, 'freeing space after a full disk did not complete'));
  }

  async met(where: string, err: unknown): Promise<void> {
    if (!this.warned)
      this.deps.logger.error({ where, err: (err as Error).message, reserveBytes: this.bytes }, 'disk full: the write was refused and nothing of it kept');
    this.warned = true;
    this.retryLater();
    await this.free();
    await this.restore().catch(() => false);
  }

  /** Deletes the reserve so the write that needs it can go on; true when that freed space. */
  async release(why: string): Promise<boolean> {
    if (this.bytes === 0 || (await sizeOf(this.layout.reserve)) === 0) return false;
    await rm(this.layout.reserve, { force: true });
    this.deps.logger.warn(
      { why, reserveBytes: this.bytes },
      'disk full: released the space reserve so metadata writes go on; it is written again once space is freed',
    );
    this.retryLater();
    return true;
  }

  /**
   * Runs `work`; when it meets a full disk the reserve is released and it runs once more (even
   * if another caller released it a moment before: the space is there either way).
   */
  async retrying<T>(work: () => T | Promise<T>, what: string): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      await this.release(what);
      try {
        return await work();
      } catch (again) {
        if (isDiskFull(again)) this.noteFull(what, again);
        throw again;
      }
    }
  }

  /** The port with every method run through retrying(): every port method is asynchronous, and a failed SQLite write left nothing behind to repeat. */
  guard<T extends object>(port: T, name: string): T {
    return new Proxy(port, {
      get: (target, prop, receiver) => {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => this.retrying(() => (value as (...a: unknown[]) => unknown).apply(target, args), `${name}.${String(prop)}`);
      },
    });
  }

  /**
   * Writes the reserve again when twice its size is free (content keeps the other half, so it
   * is not taken back at once); true when it is in place. Concurrent calls share one attempt.
   */
  restore(): Promise<boolean> {
    this.restoring ??= this.fill().finally(() => {
      this.restoring = undefined;
    });
    return this.restoring;
  }

  /**
   * Start-up on a full disk (less free than the reserve needs): every partial upload goes, the
   * cheapest bytes to lose (neither content nor metadata; their clients start them again), so
   * the reserve is kept for SQLite. Returns how many went.
   */
  async freeAtStart(): Promise<number> {
    const { free } = await this.figures();
    if (free >= this.need) return 0;
    const names = await readdir(this.layout.uploadsDir).catch(() => [] as string[]);
    await Promise.all(names.map((n) => rm(join(this.layout.uploadsDir, n), { force: true, recursive: true })));
    if (names.length > 0)
      this.deps.logger.warn({ removed: names.length, freeBytes: free }, 'disk full at start: removed every partial upload (clients start them again)');
    return names.length;
  }

  /** For /readyz: fine while the reserve is held or as much is free; else eviction is tried first. */
  async report(): Promise<DiskReport> {
    let held = await this.restore();
    let { free } = await this.figures();
    if (!held && free < this.need) {
      await this.free();
      held = await this.restore();
      ({ free } = await this.figures());
    }
    const reserveHeld = this.bytes > 0 && held;
    const ok = reserveHeld || free >= this.need;
    if (ok) this.warned = false;
    const base = { ok, freeBytes: free, reserveBytes: this.bytes, reserveHeld };
    if (ok) return base;
    return {
      ...base,
      message: `the store's file system has ${free} bytes free, less than the ${this.need} metadata writes need, and nothing more could be evicted: pushes and new content answer 507`,
      fix: `free space on the file system of ${this.deps.root}, lower storage.maxsize, or delete images (DELETE of their manifests, or POST /api/v1/evict)`,
    };
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async free(): Promise<void> {
    for (const free of this.freers) {
      await free().catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'freeing space on a full disk did not complete'));
    }
  }

  private retryLater(): void {
    if (this.timer || this.bytes === 0) return;
    this.timer = setInterval(() => {
      void this.restore().then(
        (held) => {
          if (held) this.close();
        },
        (err: Error) => this.deps.logger.warn({ err: err.message }, 'could not write the space reserve'),
      );
    }, this.deps.retryMs ?? DEFAULT_RETRY_MS);
    this.timer.unref();
  }

  private async fill(): Promise<boolean> {
    const { reserve, reserveTemp } = this.layout;
    if (this.bytes === 0) return true;
    const had = await sizeOf(reserve);
    if (had >= this.bytes) return true;
    const { free } = await this.figures();
    if (free + had < 2 * this.bytes) return false;
    let fh;
    try {
      // Exclusive: another process of the store (a serving worker) may be writing it right now.
      fh = await open(reserveTemp, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' || isDiskFull(err)) return false;
      throw err;
    }
    try {
      // Real zeros, not a sparse file: only written blocks are space nothing else can take.
      const zeros = Buffer.alloc(CHUNK);
      for (let at = 0; at < this.bytes; at += CHUNK) await fh.write(zeros, 0, Math.min(CHUNK, this.bytes - at), at);
      await fh.sync();
      await fh.close();
      fh = undefined;
      await rename(reserveTemp, reserve);
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await rm(reserveTemp, { force: true });
      if (isDiskFull(err)) return false;
      throw err;
    }
    this.warned = false;
    this.deps.logger.info({ reserveBytes: this.bytes }, 'space reserve in place for metadata writes on a full disk');
    return true;
  }

  private figures(): Promise<SpaceFigures> {
    return (this.deps.space ?? statfsFigures)(this.deps.root);
  }
}

async function statfsFigures(root: string): Promise<SpaceFigures> {
  const s = await statfs(root);
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (st) => st.size,
    () => 0,
  );
}
