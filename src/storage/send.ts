/** @module storage/send — writing a byte range of an open file to a socket-like writable with a few reused buffers. */
import { read } from 'node:fs';
import type { Writable } from 'node:stream';

/**
 * Large reads: each read costs a thread-pool round trip and each write a system call, so 256 KiB
 * keeps that overhead small next to copying the bytes; measured against 64 KiB it halves the
 * CPU per GB served (see the README's performance section).
 */
export const SEND_CHUNK = 256 * 1024;
/** One buffer being read into while the other is queued in the socket. */
const BUFFERS = 2;

/**
 * SEND_CHUNK buffers handed from one response to the next. Without it every response allocates
 * its own, and the garbage collector, seeing little JavaScript heap, lets them pile up outside
 * it: tens of MiB of resident memory under 16 clients.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(private readonly keep = 64) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(SEND_CHUNK);
  }

  give(buf: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buf);
  }
}

function readAt(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

export class ResponseClosedError extends Error {
  readonly code = 'ERR_STREAM_PREMATURE_CLOSE';
  constructor() {
    super('the response closed before the blob was sent');
  }
}

/**
 * Sends bytes [start, end] (inclusive) of `fd` to `out`, then ends it. A buffer is reused only
 * after the writable's callback says its bytes are gone (to the kernel, or through TLS), so no
 * chunk is allocated per read and memory stays at BUFFERS x SEND_CHUNK per response, however
 * slow the client. Resolves when `out` finished; rejects when it closed first or a read failed
 * (then `out` is left as it is, for the caller to cut).
 */
export function sendRange(fd: number, start: number, end: number, out: Writable, onBytes: (n: number) => void, pool = new BufferPool(0)): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const free: Buffer[] = [];
    for (let i = 0; i < BUFFERS; i++) free.push(pool.take());
    // A buffer still queued in the socket when this settles goes back from its write callback.
    let pos = start;
    let settled = false;
    let wake: (() => void) | undefined;
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      for (const b of free.splice(0)) pool.give(b);
      out.off('close', onClose);
      out.off('drain', onDrain);
      if (err) reject(err);
      else resolve();
    };
    const onClose = (): void => {
      settle(out.writableFinished ? undefined : new ResponseClosedError());
      wake?.();
    };
    const onDrain = (): void => wake?.();
    out.on('close', onClose);
    out.on('drain', onDrain);
    const waitFor = (ready: () => boolean): Promise<void> | undefined => {
      if (ready() || settled) return undefined;
      return new Promise<void>((r) => {
        wake = () => {
          if (ready() || settled) {
            wake = undefined;
            r();
          }
        };
      });
    };
    const loop = async (): Promise<void> => {
      while (pos <= end && !settled) {
        // Backpressure: stop reading while the socket holds more than its high-water mark.
        await waitFor(() => !out.writableNeedDrain && free.length > 0);
        if (settled) return;
        const buf = free.pop()!;
        const want = Math.min(buf.length, end - pos + 1);
        const n = await readAt(fd, buf, want, pos);
        if (n === 0) throw new Error(`file ended at byte ${pos}, before byte ${end}`);
        if (settled) return;
        pos += n;
        out.write(n === buf.length ? buf : buf.subarray(0, n), () => {
          if (settled) pool.give(buf);
          else free.push(buf);
          wake?.();
        });
        onBytes(n);
      }
      if (!settled) out.end(() => settle());
    };
    // The caller cuts the response on rejection (it owns the error reporting).
    loop().catch((err: Error) => settle(err));
  });
}
