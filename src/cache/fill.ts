/** @module cache/fill — one upstream transfer of one blob into the store, shared by every client that wants it. */
import { Readable } from 'node:stream';
import { open, type FileHandle } from 'node:fs/promises';
import type { BlobWriter } from '../storage/blobs.js';
import { isNotFound } from '../storage/blobs.js';

export type FillState = 'receiving' | 'verified' | 'failed';

const READ_CHUNK = 256 * 1024;

/**
 * A fill writes upstream bytes to a temp file while any number of readers follow it from disk.
 * Readers never see the last byte of what they asked for until the digest is verified, so a
 * corrupt transfer ends every response short (the client sees a cut connection, never a
 * complete success). Readers do not own the fill: their leaving never aborts it.
 */
export class BlobFill {
  readonly digest: string;
  readonly tempPath: string;
  /** Expected size: from the manifest descriptor or the upstream Content-Length. */
  size: number | undefined;
  state: FillState = 'receiving';
  error: Error | undefined;
  written = 0;
  readers = 0;
  /** Resolves once the upstream answered and size is known (or unknowable); rejects on upstream error. */
  readonly ready: Promise<void>;
  /** Resolves when verified and committed; rejects when the transfer failed. */
  readonly done: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (err: Error) => void;
  private resolveDone!: () => void;
  private rejectDone!: (err: Error) => void;
  private waiters: Array<() => void> = [];

  constructor(digest: string, tempPath: string, private readonly finalPath: string) {
    this.digest = digest;
    this.tempPath = tempPath;
    this.ready = new Promise((res, rej) => { this.resolveReady = res; this.rejectReady = rej; });
    this.done = new Promise((res, rej) => { this.resolveDone = res; this.rejectDone = rej; });
    // Failures are reported through readers and logs; nobody is obliged to await these.
    this.ready.catch(() => undefined);
    this.done.catch(() => undefined);
  }

  markReady(size: number | undefined): void {
    this.size = size;
    this.resolveReady();
  }

  /** Records bytes durably handed to the file, waking readers. */
  progress(bytes: number): void {
    this.written += bytes;
    this.wake();
  }

  succeed(): void {
    this.state = 'verified';
    this.size = this.written;
    this.resolveDone();
    this.wake();
  }

  fail(err: Error): void {
    if (this.state !== 'receiving') return;
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

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** A stream of bytes [start, end] (inclusive) following the fill as it progresses. */
  createReader(start: number, end: number | undefined): Readable {
    this.readers++;
    const stream = Readable.from(this.follow(start, end), { objectMode: false, highWaterMark: READ_CHUNK });
    stream.once('close', () => { this.readers--; });
    return stream;
  }

  private async *follow(start: number, end: number | undefined): AsyncGenerator<Buffer> {
    const fh = await this.openFile();
    try {
      let pos = start;
      for (;;) {
        if (this.state === 'failed') throw this.error ?? new Error(`fill of ${this.digest} failed`);
        const last = end ?? (this.size !== undefined ? this.size - 1 : undefined);
        if (last !== undefined && pos > last) return;
        // Until verified, keep back the final byte of the response.
        const limit = this.state === 'verified' ? (last ?? this.written - 1) + 1 : Math.min(this.written, last ?? Infinity);
        if (this.state === 'verified' && pos >= limit) return;
        if (pos < limit) {
          const want = Math.min(READ_CHUNK, limit - pos);
          const buf = Buffer.allocUnsafe(want);
          const { bytesRead } = await fh.read(buf, 0, want, pos);
          if (bytesRead === 0) throw new Error(`unexpected end of ${this.digest} at ${pos}`);
          pos += bytesRead;
          yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
          continue;
        }
        // No await since the checks above, so no change can have slipped in before this wait.
        await this.changed();
      }
    } finally {
      await fh.close();
    }
  }

  /** The temp file may already have been renamed into place by the time a reader opens it. */
  private async openFile(): Promise<FileHandle> {
    try {
      return await open(this.tempPath, 'r');
    } catch (err) {
      if (isNotFound(err) && this.state === 'verified') return open(this.finalPath, 'r');
      throw err;
    }
  }
}

/**
 * Pumps an upstream body into the writer, then verifies and commits. Runs to completion whether
 * or not any reader is still attached.
 */
export async function pumpFill(fill: BlobFill, body: AsyncIterable<Uint8Array>, writer: BlobWriter): Promise<{ digest: string; size: number }> {
  try {
    for await (const chunk of body) {
      await writer.write(chunk);
      fill.progress(chunk.length);
    }
    const committed = await writer.commit(fill.digest, fill.size);
    fill.succeed();
    return committed;
  } catch (err) {
    await writer.abort().catch(() => undefined);
    fill.fail(err as Error);
    throw err;
  }
}
