/** @module storage/open-files — stored blobs' descriptors kept open between requests, so a warm blob costs one stat, not an open, fstat and close. */
import { statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** Descriptors kept while no reader uses them: enough for an image's layers under many clients, far below the fd limit. */
export const OPEN_FILES_MAX = 128;
/** An unused descriptor closes after this long, so a file removed behind berth's back (`berth gc`, another worker) frees its disk soon. */
export const OPEN_FILES_IDLE_MS = 5000;

export interface OpenFile {
  readonly fh: FileHandle;
  readonly size: number;
}

/** `reused`: the descriptor was kept from an earlier reader (the same file, unchanged since it was opened). */
export interface Acquired {
  readonly file: OpenFile;
  readonly reused: boolean;
}

interface Entry extends OpenFile {
  readonly ino: number;
  readonly dev: number;
  readonly mtimeMs: number;
  refs: number;
  /** Dropped (deleted, replaced, or over the bound): closes once its last reader is done. */
  gone: boolean;
  idleSince: number;
}

/**
 * Blob files are named by digest and never change once committed, so one descriptor serves every
 * request for a blob. Before a kept descriptor is reused the path is stat'd on the calling thread
 * (a cached inode, microseconds): a file deleted or replaced since is never served from the old
 * descriptor. Deletion through the store drops the entry at once (a reader still sending keeps
 * its descriptor until done), so eviction frees the space as soon as the last reader finishes.
 */
export class OpenFiles {
  private readonly entries = new Map<string, Entry>();
  /** Opens under way, so concurrent first requests share one descriptor. */
  private readonly opening = new Map<string, Promise<Entry | undefined>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly max = OPEN_FILES_MAX,
    private readonly idleMs = OPEN_FILES_IDLE_MS,
  ) {}

  /** Descriptors open right now (for tests and the bound). */
  get size(): number {
    return this.entries.size;
  }

  /** The open file at `path` (undefined: none there); call release(key, file) exactly once after. */
  async acquire(key: string, path: string): Promise<Acquired | undefined> {
    const kept = this.entries.get(key);
    if (kept && this.current(kept, path)) {
      kept.refs++;
      // Least recently used first: a reused entry moves to the end.
      this.entries.delete(key);
      this.entries.set(key, kept);
      return { file: kept, reused: true };
    }
    if (kept) this.drop(key);
    let pending = this.opening.get(key);
    if (!pending) {
      pending = this.openEntry(key, path).finally(() => this.opening.delete(key));
      this.opening.set(key, pending);
    }
    const entry = await pending;
    if (!entry) return undefined;
    if (entry.gone) return this.acquire(key, path);
    entry.refs++;
    return { file: entry, reused: false };
  }

  release(key: string, file: OpenFile): void {
    const entry = file as Entry;
    entry.refs--;
    entry.idleSince = this.now();
    if (entry.refs > 0) return;
    if (entry.gone || this.entries.get(key) !== entry) {
      closeQuietly(entry);
      return;
    }
    this.trim();
    this.sweepLater();
  }

  /** The file is being deleted or replaced: its descriptor closes now, or when its last reader is done. */
  drop(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    entry.gone = true;
    if (entry.refs === 0) closeQuietly(entry);
  }

  /** Closes every descriptor no reader uses (readers still sending close theirs when done). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const key of [...this.entries.keys()]) this.drop(key);
  }

  private async openEntry(key: string, path: string): Promise<Entry | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const st = await fh.stat();
      const entry: Entry = { fh, size: st.size, ino: st.ino, dev: st.dev, mtimeMs: st.mtimeMs, refs: 0, gone: false, idleSince: this.now() };
      // A delete that ran while this opened is caught by the next reuse's stat.
      this.entries.set(key, entry);
      return entry;
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /** Whether `path` is still the file `entry` has open, unchanged. */
  private current(entry: Entry, path: string): boolean {
    const st = statSync(path, { throwIfNoEntry: false });
    return st !== undefined && st.ino === entry.ino && st.dev === entry.dev && st.size === entry.size && st.mtimeMs === entry.mtimeMs;
  }

  /** Over the bound: the least recently used descriptors nobody reads close (Map order is insertion; reuse refreshes it). */
  private trim(): void {
    if (this.entries.size <= this.max) return;
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.max) break;
      if (entry.refs === 0) this.drop(key);
    }
  }

  private sweepLater(): void {
    // unref: kept descriptors never keep the process alive.
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.sweep();
    }, this.idleMs).unref();
  }

  /** Closes what has been unused for idleMs; comes back while any descriptor stays open. */
  sweep(): void {
    const cutoff = this.now() - this.idleMs;
    for (const [key, entry] of this.entries) if (entry.refs === 0 && entry.idleSince <= cutoff) this.drop(key);
    if (this.entries.size > 0) this.sweepLater();
  }
}

function closeQuietly(entry: Entry): void {
  // A descriptor of an immutable file read to the end: closing it can only fail if it is already closed.
  entry.fh.close().catch(() => undefined);
}
