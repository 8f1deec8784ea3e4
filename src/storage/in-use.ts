/** @module storage/in-use — berth.lock: a running berth's pid and the blobs it has open, so `berth gc` beside it leaves them alone. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { rename, rm, writeFile } from 'node:fs/promises';
import { StoreLayout } from './layout.js';

/**
 * Least time between two writes. Under 16 clients the set changed with nearly every request, and
 * each write (a file written and renamed) cost more than serving a small blob. A reader that gc
 * misses meanwhile keeps its bytes (its descriptor stays open), and gc leaves anything pulled in
 * the last minute alone anyway.
 */
export const IN_USE_WRITE_GAP_MS = 1000;

interface LockBody {
  readonly pid: number;
  readonly updatedAt: number;
  readonly inUse: string[];
}

/**
 * Written by `berth serve` whenever the set of blobs it streams or fills changes; writes are
 * coalesced (one in flight, the newest state after it) and come at most once per
 * IN_USE_WRITE_GAP_MS, so a burst of requests costs a few small writes, never one per request.
 * Removed on a clean stop; a stale file (dead pid) is ignored.
 */
export class InUseRecord {
  private writing: Promise<void> | undefined;
  private gap: NodeJS.Timeout | undefined;
  private dirty = false;
  private closed = false;
  private readonly file: string;
  private inUse: string[] = [];

  constructor(
    root: string,
    private readonly now: () => number,
    private readonly pid = process.pid,
    /** A serving worker's slot: each worker keeps its own record (berth.lock.w<N>). */
    slot?: number,
  ) {
    const layout = new StoreLayout(root);
    this.file = slot === undefined ? layout.lockFile : layout.workerLockFile(slot);
  }

  /** Something started or stopped being in use; `inUse` is the whole set now. */
  changed(inUse: string[]): void {
    if (this.closed) return;
    this.inUse = inUse;
    this.dirty = true;
    if (this.gap === undefined) this.startFlush();
  }

  private startFlush(): void {
    this.writing ??= this.flush().finally(() => {
      this.writing = undefined;
      if (this.closed) return;
      // Changes until the gap is over wait for one write at its end. unref: it never keeps the process alive.
      this.gap = setTimeout(() => {
        this.gap = undefined;
        if (this.dirty) this.startFlush();
      }, IN_USE_WRITE_GAP_MS).unref();
    });
  }

  async open(): Promise<void> {
    await this.write();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.gap);
    await this.writing?.catch(() => undefined);
    await rm(this.file, { force: true });
  }

  private async flush(): Promise<void> {
    while (this.dirty && !this.closed) {
      this.dirty = false;
      await this.write().catch(() => undefined);
    }
  }

  private async write(): Promise<void> {
    const body: LockBody = { pid: this.pid, updatedAt: this.now(), inUse: this.inUse };
    const temp = `${this.file}.${this.pid}`;
    try {
      await writeFile(temp, JSON.stringify(body));
      await rename(temp, this.file);
    } catch (err) {
      // A full disk leaves no half-written record behind.
      await rm(temp, { force: true });
      throw err;
    }
  }
}

/**
 * What live berth processes on this store have open (every worker's record together), leaving
 * out `exceptPid` (a worker's own, which it knows better); undefined when none runs there.
 */
export function readInUse(root: string, isAlive: (pid: number) => boolean = pidAlive, exceptPid?: number): { pid: number; inUse: Set<string> } | undefined {
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => StoreLayout.isLockName(n));
  } catch {
    return undefined;
  }
  let found: { pid: number; inUse: Set<string> } | undefined;
  for (const name of names) {
    let body: LockBody;
    try {
      body = JSON.parse(readFileSync(join(root, name), 'utf8')) as LockBody;
    } catch {
      continue;
    }
    if (!Number.isSafeInteger(body.pid) || body.pid === exceptPid || !isAlive(body.pid)) continue;
    found ??= { pid: body.pid, inUse: new Set() };
    for (const d of Array.isArray(body.inUse) ? body.inUse : []) found.inUse.add(d);
  }
  return found;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
