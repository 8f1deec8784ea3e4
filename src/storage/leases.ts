/** @module storage/leases — which stored blobs are being read right now, so removal leaves them alone, and the open handle a reader reads them through. */
import type { FileHandle } from 'node:fs/promises';
import { Readable, finished, type Writable } from 'node:stream';
import { type BufferPool, type OnBytes, STREAM_CHUNK, sendRange } from './send.js';
import type { ZeroCopy } from './zero-copy.js';

/**
 * Readers and removal of one store meet here. A reader takes a lease synchronously, before its
 * first await, so no removal can start between its lookup and its open; a removal that started
 * first is waited out, and the reader then finds the blob gone (and fetches it again). Both sides
 * decide without awaiting, so every interleaving is one of those two.
 */
export class Leases {
  private readonly held = new Map<string, number>();
  private readonly removing = new Map<string, Promise<void>>();

  isHeld(digest: string): boolean {
    return (this.held.get(digest) ?? 0) > 0;
  }

  heldDigests(): string[] {
    return [...this.held.keys()];
  }

  /** Leases `digest` now; the promise settles once no removal of it is under way. Call release exactly once. */
  acquire(digest: string): { settled: Promise<void>; release: () => void } {
    this.held.set(digest, (this.held.get(digest) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const n = (this.held.get(digest) ?? 1) - 1;
      if (n > 0) this.held.set(digest, n);
      else this.held.delete(digest);
    };
    return { settled: this.removing.get(digest) ?? Promise.resolve(), release };
  }

  /** Runs `remove` unless a reader holds the digest: false when it was left alone. */
  async remove(digest: string, remove: () => Promise<void>): Promise<boolean> {
    if (this.isHeld(digest) || this.removing.has(digest)) return false;
    // Marked before `remove` runs a single step: a reader it lets in (an await) must see it.
    let settle!: () => void;
    this.removing.set(
      digest,
      new Promise<void>((resolve) => {
        settle = resolve;
      }),
    );
    try {
      await remove();
    } finally {
      this.removing.delete(digest);
      settle();
    }
    return true;
  }
}

/**
 * One committed blob opened for reading: the descriptor is opened at lookup time and kept until
 * close(), so the bytes stay readable even if the file is unlinked meanwhile. Any number of range
 * streams read from it by position; the descriptor is given back (`closeFile`: closed, or returned
 * to storage/open-files) when the handle and its streams are done.
 */
export class StoredBlob {
  private streams = 0;
  private closing = false;
  private closed: Promise<void> | undefined;

  constructor(
    readonly digest: string,
    readonly size: number,
    private readonly fh: FileHandle,
    private readonly release: () => void,
    private readonly pool?: BufferPool,
    private readonly zeroCopy?: ZeroCopy,
    private readonly closeFile: () => Promise<void> | void = () => fh.close(),
    /** The descriptor was kept from an earlier reader: the file is the one that reader opened, unchanged (storage/open-files). */
    readonly reused = false,
  ) {}

  /** Bytes [start, end] inclusive; end defaults to the last byte. */
  stream(start = 0, end = this.size - 1): Readable {
    if (this.closing) throw new Error(`blob ${this.digest} was read after its handle was closed`);
    // The empty blob (and any empty range) has no byte to read; a file stream refuses end < start.
    if (end < start) return Readable.from([]);
    this.streams++;
    // Not fs.createReadStream: destroying one (a cut upload, a client gone) closes its descriptor
    // whatever autoClose says, and every other reader of this handle would then fail.
    const stream = rangeReader(this.fh, start, end, this.digest);
    // Without autoClose the stream is not destroyed at its end, so 'close' alone would not come.
    finished(stream, () => {
      this.streams--;
      if (this.closing && this.streams === 0) this.finish().catch(ignoreClose);
    });
    return stream;
  }

  /** Writes bytes [start, end] to `out` and ends it unless `endOut` is false (storage/send); the descriptor stays open until it is done. */
  async send(out: Writable, start: number, end: number, onBytes: OnBytes, endOut = true): Promise<void> {
    if (this.closing) throw new Error(`blob ${this.digest} was read after its handle was closed`);
    this.streams++;
    try {
      await sendRange(this.fh.fd, start, end, out, onBytes, this.pool, this.zeroCopy, endOut);
    } finally {
      this.streams--;
      if (this.closing && this.streams === 0) this.finish().catch(ignoreClose);
    }
  }

  async readAll(): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(this.size);
    let pos = 0;
    while (pos < this.size) {
      const { bytesRead } = await this.fh.read(buf, pos, this.size - pos, pos);
      if (bytesRead === 0) throw new Error(`blob ${this.digest} ended at ${pos} of ${this.size} bytes`);
      pos += bytesRead;
    }
    return buf;
  }

  /** Idempotent; waits for streams still open. */
  close(): Promise<void> {
    this.closing = true;
    return this.streams === 0 ? this.finish() : Promise.resolve();
  }

  private finish(): Promise<void> {
    this.closed ??= (async () => {
      this.release();
      await this.closeFile();
    })();
    return this.closed;
  }
}

/** Bytes [start, end] of an open file by positional reads; destroying it leaves the descriptor open. */
function rangeReader(fh: FileHandle, start: number, end: number, digest: string): Readable {
  let pos = start;
  return new Readable({
    highWaterMark: STREAM_CHUNK,
    read() {
      const len = Math.min(STREAM_CHUNK, end + 1 - pos);
      if (len <= 0) {
        this.push(null);
        return;
      }
      const buf = Buffer.allocUnsafe(len);
      fh.read(buf, 0, len, pos).then(
        ({ bytesRead }) => {
          if (bytesRead === 0) return this.destroy(new Error(`blob ${digest} ended at byte ${pos}, before its size`));
          pos += bytesRead;
          this.push(bytesRead < len ? buf.subarray(0, bytesRead) : buf);
        },
        (err: Error) => this.destroy(err),
      );
    },
  });
}

/** The last reader closing the descriptor: it fails only if it is already closed, and no caller waits on it. */
function ignoreClose(): void {}
