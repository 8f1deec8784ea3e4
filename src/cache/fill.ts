/** @module cache/fill — one upstream transfer of one blob into the store, shared by every client that wants it. */
import { Readable, type Writable } from 'node:stream';
import { open, type FileHandle } from 'node:fs/promises';
import type { BlobWriter } from '../storage/blob-files.js';
import { isNotFound } from '../storage/blob-files.js';
import { type BufferPool, ResponseBuffers, ResponseClosedError } from '../storage/send.js';
import { HeldChunks } from './held-chunks.js';

export type FillState = 'receiving' | 'verified' | 'failed';
/**
 * `disk`: bytes go to the temp file; `shared`: the temp file is another worker's, which writes
 * them (this fill checks and follows them); `memory`: the disk filled up and bytes pass through
 * to readers only.
 */
export type FillMode = 'disk' | 'shared' | 'memory';

const READ_CHUNK = 256 * 1024;
/**
 * The latest upstream bytes (about 50 ms of a 20 MB/s link) kept in memory while a fill is
 * receiving: readers keeping up (the usual case in a roll-out) are handed those very buffers, so
 * one chunk from upstream goes to every socket without a disk read or a copy per reader. Readers
 * further behind read the disk. 4 MiB measured no faster and cost 30 MiB more resident memory.
 */
const RECENT_MAX = 1024 * 1024;
/** Bytes held for readers in pass-through mode before the upstream is paused. */
const MAX_WINDOW = 8 * 1024 * 1024;

interface Cursor {
  pos: number;
}

/**
 * A fill writes upstream bytes to a temp file while any number of readers follow it from disk.
 * Readers never see the last byte of what they asked for until the digest is verified, so a
 * corrupt transfer ends every response short (the client sees a cut connection, never a
 * complete success); early readers (ranges, docs/lazy-pulling.md) are the one exception. Readers do not own the fill: their leaving never aborts it.
 */
export class BlobFill {
  readonly digest: string;
  readonly tempPath: string;
  /** Expected size: from the manifest descriptor or the upstream Content-Length. */
  size: number | undefined;
  state: FillState = 'receiving';
  mode: FillMode = 'disk';
  /** Whether the verified bytes were committed to the store (false after pass-through). */
  stored = false;
  error: Error | undefined;
  written = 0;
  /** Bytes readable from the temp file; beyond this, bytes live in `window`. */
  diskBytes = 0;
  /** Resolves once the upstream answered and size is known (or unknowable); rejects on upstream error. */
  readonly ready: Promise<void>;
  /** Resolves when verified; rejects when the transfer failed. */
  readonly done: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (err: Error) => void;
  private resolveDone!: () => void;
  private rejectDone!: (err: Error) => void;
  /** Resolves once the fill may ask its source for bytes (cache/blob-cache holds it back for a client's ranges). */
  readonly gate: Promise<void>;
  private openGate!: () => void;
  private waiters: Array<() => void> = [];
  private readonly cursors = new Set<Cursor>();
  private readonly window = new HeldChunks();
  /** The tail of what is on disk, as received: recent.start + recent.bytes === diskBytes. */
  private readonly recent = new HeldChunks();

  constructor(
    digest: string,
    tempPath: string,
    private readonly finalPath: string,
  ) {
    this.digest = digest;
    this.tempPath = tempPath;
    this.ready = new Promise((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.done = new Promise((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    this.gate = new Promise((res) => (this.openGate = res));
    // Failures are reported through readers and logs; nobody is obliged to await these.
    this.ready.catch(() => undefined);
    this.done.catch(() => undefined);
  }

  get readers(): number {
    return this.cursors.size;
  }

  /** Whether release() was called: the fill may ask its source for bytes. */
  released = false;

  /** Lets the fill start asking its source for bytes; idempotent. */
  release(): void {
    this.released = true;
    this.openGate();
  }

  markReady(size: number | undefined): void {
    this.size = size;
    this.resolveReady();
  }

  /** Takes the next upstream chunk: to disk, or (disk full) to the pass-through window. */
  async accept(chunk: Uint8Array, writer: BlobWriter, onDiskFull: (err: Error) => Promise<void>): Promise<void> {
    if (this.mode === 'shared') {
      // Already in the file, written by the worker this fill follows.
      writer.hashOnly(chunk);
      this.remember(chunk);
      this.diskBytes += chunk.length;
      this.advance(chunk.length);
      return;
    }
    if (this.mode === 'disk') {
      try {
        await writer.write(chunk);
        this.remember(chunk);
        this.diskBytes += chunk.length;
        this.advance(chunk.length);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        this.mode = 'memory';
        this.window.reset(this.diskBytes);
        await onDiskFull(err as Error);
      }
    }
    if (this.readers === 0) throw new Error('disk full and no client is left to pass the bytes to');
    writer.hashOnly(chunk);
    this.window.push(chunk);
    this.advance(chunk.length);
    // Backpressure: the slowest reader sets the pace, so memory stays bounded.
    while (this.window.bytes > MAX_WINDOW && this.readers > 0 && this.state === 'receiving') await this.changed();
  }

  /** Before the first byte: the temp file becomes another name of `path` (mode `shared`); false when the filesystem refuses. */
  async share(writer: BlobWriter, path: string): Promise<boolean> {
    if (this.written > 0 || this.mode !== 'disk') return false;
    const ok = await writer.share(path).then(
      () => true,
      () => false,
    );
    if (ok) this.mode = 'shared';
    return ok;
  }

  /** This fill writes its bytes itself again, from where it is (it took over the fill). */
  own(): void {
    if (this.mode === 'shared') this.mode = 'disk';
  }

  private remember(chunk: Uint8Array): void {
    this.recent.push(chunk);
    this.recent.dropWhile((first) => this.recent.bytes - first >= RECENT_MAX);
  }

  private forgetRecent(): void {
    this.recent.reset(this.diskBytes);
  }

  succeed(stored: boolean): void {
    // Readers still behind finish from the file; the memory goes with the transfer.
    this.forgetRecent();
    this.state = 'verified';
    this.stored = stored;
    this.size = this.written;
    this.resolveDone();
    this.wake();
  }

  fail(err: Error): void {
    if (this.state !== 'receiving') return;
    this.forgetRecent();
    this.state = 'failed';
    this.error = err;
    this.rejectReady(err);
    this.rejectDone(err);
    this.wake();
  }

  /** Resolves at the next progress or state change. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private advance(bytes: number): void {
    this.written += bytes;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Drops pass-through bytes every reader has passed, and lets a paused upstream go on. */
  private readerMoved(): void {
    if (this.mode !== 'memory') return;
    let min = Infinity;
    for (const c of this.cursors) min = Math.min(min, c.pos);
    this.window.dropWhile((first) => this.window.start + first <= min);
    this.wake();
  }

  /**
   * A stream of bytes [start, end] (inclusive) following the fill as it progresses. `early`: a
   * range answered before the blob is verified (proxy.rangefetch) ends with its last byte, not
   * with the digest check.
   */
  createReader(start: number, end: number | undefined, early = false): Readable {
    const cursor: Cursor = { pos: start };
    this.cursors.add(cursor);
    const stream = Readable.from(
      this.follow(cursor, end, (fh, pos, limit) => this.readDisk(fh, pos, limit), early && end !== undefined),
      { objectMode: false, highWaterMark: READ_CHUNK },
    );
    stream.once('close', () => this.leave(cursor));
    return stream;
  }

  /**
   * Writes bytes [start, end] to `out` as they arrive, then ends it: no stream in between, and
   * disk reads (readers behind the bytes held in memory) go into `pool`'s buffers, reused once the
   * socket has taken them, so a lagging reader allocates nothing per read. Rejects when `out`
   * closes first or the fill fails (then `out` is left for the caller to cut).
   */
  async send(out: Writable, start: number, end: number, onBytes: (n: number) => void, pool: BufferPool): Promise<void> {
    const cursor: Cursor = { pos: start };
    this.cursors.add(cursor);
    // Taken only when a disk read needs one: a reader keeping up with the fill never does, and
    // 300 of them holding two idle buffers each would be 150 MiB.
    let wake: (() => void) | undefined;
    const buffers = new ResponseBuffers(pool, 2, () => wake?.());
    let closed = false;
    // A reader waiting for the next upstream bytes must not wait for them to learn its client
    // left: closing settles the pending wait. Not a race against one long-lived promise: each
    // race would add a reaction to it, holding every chunk sent until the response ends.
    let closedNow: (() => void) | undefined;
    const onClose = (): void => {
      closed = true;
      // Off the fill at once: a cursor left behind would hold back a pass-through window.
      this.leave(cursor);
      wake?.();
      closedNow?.();
    };
    const nextChunk = (): Promise<IteratorResult<Buffer>> =>
      new Promise((resolve, reject) => {
        closedNow = () => resolve({ done: true, value: undefined });
        if (closed) closedNow();
        else chunks.next().then(resolve, reject);
      });
    const onDrain = (): void => wake?.();
    out.on('close', onClose);
    out.on('drain', onDrain);
    const until = async (ready: () => boolean): Promise<void> => {
      while (!ready() && !closed) await new Promise<void>((r) => (wake = r));
      wake = undefined;
    };
    /** Chunks read into a pool buffer, with that buffer, until their write completes. */
    const pooled = new Map<Buffer, Buffer>();
    const readDisk = async (fh: FileHandle | undefined, pos: number, limit: number): Promise<Buffer> => {
      if (!fh) throw new Error(`temp file of ${this.digest} is gone`);
      await until(() => buffers.ready());
      if (closed) throw new ResponseClosedError();
      const buf = buffers.lend();
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, limit - pos), pos).catch((err: unknown) => {
        buffers.giveBack(buf);
        throw err;
      });
      if (bytesRead === 0) {
        buffers.giveBack(buf);
        throw new Error(`unexpected end of ${this.digest} at ${pos}`);
      }
      const chunk = buf.subarray(0, bytesRead);
      pooled.set(chunk, buf);
      return chunk;
    };
    const chunks = this.follow(cursor, end, readDisk);
    try {
      for (;;) {
        const next = await nextChunk();
        closedNow = undefined;
        if (closed) throw new ResponseClosedError();
        if (next.done) break;
        const chunk = next.value;
        const base = pooled.get(chunk);
        pooled.delete(chunk);
        // A buffer whose write completes after this response settled goes back to the pool.
        buffers.write(out, chunk, base);
        onBytes(chunk.length);
        await until(() => !out.writableNeedDrain);
      }
      if (closed) throw new ResponseClosedError();
      await new Promise<void>((resolve, reject) => {
        out.end(() => resolve());
        out.once('close', () => (out.writableFinished ? resolve() : reject(new ResponseClosedError())));
      });
    } finally {
      // Queued behind a pending next(): the generator closes its file when that settles.
      chunks.return(undefined).catch(() => undefined);
      // Buffers read but never written (the response closed in between) are free too.
      buffers.end(pooled.values());
      out.off('close', onClose);
      out.off('drain', onDrain);
      this.leave(cursor);
    }
  }

  private leave(cursor: Cursor): void {
    if (!this.cursors.delete(cursor)) return;
    this.readerMoved();
  }

  private async *follow(
    cursor: Cursor,
    end: number | undefined,
    readDisk: (fh: FileHandle | undefined, pos: number, limit: number) => Promise<Buffer>,
    early = false,
  ): AsyncGenerator<Buffer> {
    const fh = await this.openFile();
    try {
      for (;;) {
        if (this.state === 'failed') throw this.error ?? new Error(`fill of ${this.digest} failed`);
        const pos = cursor.pos;
        const last = end ?? (this.size !== undefined ? this.size - 1 : undefined);
        if (last !== undefined && pos > last) {
          if (early) return;
          // Only an empty response gets here unverified (the empty blob): it too waits for the digest.
          while (this.state === 'receiving') await this.changed();
          if ((this.state as FillState) === 'failed') continue;
          return;
        }
        // Until verified, keep back the final byte of the response.
        const limit =
          this.state === 'verified' ? (last ?? this.written - 1) + 1 : Math.min(this.written, last === undefined ? Infinity : early ? last + 1 : last);
        if (this.state === 'verified' && pos >= limit) return;
        if (pos >= limit) {
          // No await since the checks above, so no change can have slipped in before this wait.
          await this.changed();
          continue;
        }
        const chunk =
          pos >= this.diskBytes
            ? this.window.read(pos, limit, this.digest)
            : pos >= this.recent.start && !this.recent.empty
              ? this.recent.read(pos, Math.min(limit, this.diskBytes), this.digest)
              : await readDisk(fh, pos, Math.min(limit, this.diskBytes));
        cursor.pos += chunk.length;
        this.readerMoved();
        yield chunk;
      }
    } finally {
      await fh?.close();
    }
  }

  private async readDisk(fh: FileHandle | undefined, pos: number, limit: number): Promise<Buffer> {
    if (!fh) throw new Error(`temp file of ${this.digest} is gone`);
    const want = Math.min(READ_CHUNK, limit - pos);
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(buf, 0, want, pos);
    if (bytesRead === 0) throw new Error(`unexpected end of ${this.digest} at ${pos}`);
    return bytesRead === want ? buf : buf.subarray(0, bytesRead);
  }

  /**
   * The temp file may already have been renamed into place by the time a reader opens it: the
   * rename happens before the fill is marked verified, so wait for the outcome, then open that.
   */
  private async openFile(): Promise<FileHandle | undefined> {
    try {
      return await open(this.tempPath, 'r');
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (this.mode === 'memory') return undefined;
      while (this.state === 'receiving') await this.changed();
      if (this.state === 'verified' && this.stored) return open(this.finalPath, 'r');
      throw this.error ?? err;
    }
  }
}
