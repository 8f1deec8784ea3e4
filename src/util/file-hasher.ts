/** @module util/file-hasher — digests of files (or byte ranges of them) computed in worker threads, so several are hashed on several cores at once; a range can be copied into another file and hashed as written. */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { loadCopyRange, type CopyRange } from './copy-range.js';

/**
 * The worker's code, given as text: it runs from the start-up bundle and from dist/ alike, with no
 * file of its own to find. One read buffer per worker: memory does not grow with file size.
 */
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { openSync, readSync, writeSync, closeSync, constants } = require('node:fs');
const { createHash } = require('node:crypto');
const buffer = Buffer.allocUnsafe(4 << 20);
parentPort.on('message', ({ id, path, algorithm, offset, length, to, at }) => {
  let fd;
  let out;
  try {
    fd = openSync(path, 'r');
    // Created when absent, never truncated: several copies may fill regions of one file (a tar).
    if (to !== undefined) out = openSync(to, constants.O_WRONLY | constants.O_CREAT, 0o644);
    const hash = createHash(algorithm);
    const end = length === undefined ? Infinity : length;
    let size = 0;
    for (let n; size < end && (n = readSync(fd, buffer, 0, Math.min(buffer.length, end - size), offset === undefined ? null : offset + size)) > 0; size += n) {
      const piece = buffer.subarray(0, n);
      hash.update(piece);
      for (let done = 0; out !== undefined && done < n; ) done += writeSync(out, piece, done, n - done, at + size + done);
    }
    parentPort.postMessage({ id, digest: algorithm + ':' + hash.digest('hex'), size });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  } finally {
    if (fd !== undefined) closeSync(fd);
    if (out !== undefined) closeSync(out);
  }
});
`;

/** The region of `from` copied into `to` at `at` by the kernel: the bytes copied. */
async function copyFiles(kernel: CopyRange, from: string, range: ByteRange, to: string, at: number): Promise<number> {
  const source = await open(from, 'r');
  try {
    const target = await open(to, constants.O_WRONLY | constants.O_CREAT, 0o644);
    try {
      return await kernel.copy(source.fd, range.offset, target.fd, at, range.length);
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

/** A region of a file: `length` bytes from `offset`. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

interface Answer {
  readonly id: number;
  readonly digest?: string;
  readonly size?: number;
  readonly error?: string;
}

/** A pool of hashing threads; `close()` ends them (until then they keep the process alive only while a file is being hashed). */
export class FileHasher {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (a: { digest: string; size: number }) => void; reject: (e: Error) => void }>();
  private readonly busy: number[] = [];
  private nextId = 0;

  private kernel: Promise<CopyRange | undefined> | undefined;

  /**
   * `threads`: at most this many files at once (default: one per core, at most 4). `kernelCopy`:
   * copies go by copy_file_range(2) where it works (false: always through a thread's buffer).
   */
  constructor(
    private readonly threads = Math.max(1, Math.min(4, availableParallelism())),
    private readonly kernelCopy = true,
  ) {}

  /** The file's digest (`<algorithm>:<hex>`) and size as read now; with `range`, of at most `length` bytes from `offset`. */
  hash(path: string, algorithm: string, range?: ByteRange): Promise<{ digest: string; size: number }> {
    return this.ask({ path, algorithm, ...range });
  }

  /**
   * Copies at most `length` bytes of `from` at `offset` into `to` at `at` (created when absent, not
   * truncated); the digest is of exactly the bytes written. The kernel copies where it can (no pass
   * through the process; the bytes are then read back from `to` and hashed), else a thread copies
   * through its buffer, hashing each piece as it passes. `size` is what was copied (less than
   * `length` when `from` ends first).
   */
  async copy(from: string, range: ByteRange, to: string, at: number, algorithm: string): Promise<{ digest: string; size: number }> {
    const kernel = this.kernelCopy ? await (this.kernel ??= loadCopyRange()) : undefined;
    // Any refusal (another file system, an old kernel) copies the whole range the other way.
    const copied = kernel ? await copyFiles(kernel, from, range, to, at).catch(() => undefined) : undefined;
    if (copied !== undefined) return this.hash(to, algorithm, { offset: at, length: copied });
    return this.ask({ path: from, algorithm, ...range, to, at });
  }

  private ask(job: Record<string, unknown>): Promise<{ digest: string; size: number }> {
    const slot = this.slot();
    const id = this.nextId++;
    this.busy[slot] = (this.busy[slot] ?? 0) + 1;
    const worker = this.workers[slot]!;
    worker.ref();
    return new Promise<{ digest: string; size: number }>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, ...job });
    }).finally(() => {
      this.busy[slot] = this.busy[slot]! - 1;
      if (this.busy[slot] === 0) worker.unref();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.terminate()));
    for (const [, w] of this.waiting) w.reject(new Error('the file hasher was closed'));
    this.waiting.clear();
  }

  /** The least busy worker, started on first use. */
  private slot(): number {
    if (this.workers.length < this.threads && this.busy.every((n) => n > 0)) {
      const worker = new Worker(WORKER, { eval: true });
      worker.on('message', (a: Answer) => this.answer(a));
      worker.on('error', (err: Error) => {
        for (const [, w] of this.waiting) w.reject(err);
        this.waiting.clear();
      });
      worker.unref();
      this.workers.push(worker);
      this.busy.push(0);
      return this.workers.length - 1;
    }
    let best = 0;
    for (let i = 1; i < this.busy.length; i++) if (this.busy[i]! < this.busy[best]!) best = i;
    return best;
  }

  private answer(a: Answer): void {
    const w = this.waiting.get(a.id);
    if (!w) return;
    this.waiting.delete(a.id);
    if (a.error !== undefined || a.digest === undefined || a.size === undefined) w.reject(new Error(a.error ?? 'no digest'));
    else w.resolve({ digest: a.digest, size: a.size });
  }
}
