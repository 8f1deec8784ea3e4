/** @module storage/send — writing a byte range of an open file to a socket-like writable: with a few reused buffers, or by sendfile(2) where the socket allows. */
import { read, readSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { plainSocketFd, ZeroCopyError, type ZeroCopy } from './zero-copy.js';

/**
 * Large reads: each read costs a thread-pool round trip and each write a system call (over TLS
 * also a pass of the encryption layer's write path), so large chunks keep that overhead small
 * next to copying and encrypting the bytes. 256 KiB halved the CPU per GB of 64 KiB; over TLS,
 * 16 clients, 1 MiB cost 1.13-1.16 CPU s per GB against 1.39-1.59 for 256 KiB and 1.26 for
 * 512 KiB, but a TLS response holds its chunk and the chunk's encrypted copy while writing, and
 * with 1 MiB one process went over its 150 MiB budget (161 MiB); 512 KiB stays within it (see
 * docs/performance.md). Only copied bytes use it: TLS, and plain TCP where sendfile cannot.
 */
export const SEND_CHUNK = 512 * 1024;
/** Chunks of a range read as a stream (storage/leases), allocated per read rather than pooled. */
export const STREAM_CHUNK = 256 * 1024;
/** One buffer being read into while the other is queued in the socket. */
const BUFFERS = 2;
/**
 * With sendfile: the bytes written through the socket when it was full (its callback says there
 * is room again), and the most one turn moves before other responses run. 16 curl clients on 2
 * cores, 2 GiB: 2 MiB turns (nginx's sendfile_max_chunk) moved 2.1 GB/s at 0.29 CPU s per GB,
 * 1 MiB and 8 MiB turns less and dearer, copying 1.8 GB/s at 0.56 s; a small write before every
 * turn instead of only when full cost twice the CPU.
 */
const PROBE = 16 * 1024;
const EMPTY = Buffer.alloc(0);
const TURN = 2 * 1024 * 1024;

/**
 * SEND_CHUNK buffers handed from one response to the next. Without it every response allocates
 * its own, and the garbage collector, seeing little JavaScript heap, lets them pile up outside
 * it: tens of MiB of resident memory under 16 clients. It keeps at most 16 MiB between bursts.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(private readonly keep = 32) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(SEND_CHUNK);
  }

  give(buf: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buf);
  }
}

/**
 * The pool buffers one response reads into: taken from the pool as needed (at most `max`), lent
 * to one read at a time, free again only when the writable's callback says their bytes are gone
 * (to the kernel, or through TLS), and all back in the pool once the response is over. Shared by
 * sendRange and a fill's send (cache/fill), so memory stays at `max` x SEND_CHUNK per response.
 */
export class ResponseBuffers {
  private readonly free: Buffer[] = [];
  private owned = 0;
  private over = false;

  /** `onFree`: a buffer came back (whoever waits for one may go on). */
  constructor(
    private readonly pool: BufferPool,
    private readonly max: number,
    private readonly onFree: () => void,
  ) {}

  /** Whether a buffer is free now (taking one from the pool while fewer than `max` are held). */
  ready(): boolean {
    if (this.free.length === 0 && this.owned < this.max) {
      this.free.push(this.pool.take());
      this.owned++;
    }
    return this.free.length > 0;
  }

  /** No buffer of this response is queued in the writable. */
  idle(): boolean {
    return this.free.length === this.owned;
  }

  /** A free buffer; call only after ready() said there is one. */
  lend(): Buffer {
    return this.free.pop()!;
  }

  /** A lent buffer comes back unwritten (its read failed, or the response is over). */
  giveBack(buf: Buffer): void {
    if (this.over) this.pool.give(buf);
    else this.free.push(buf);
  }

  /** Writes `chunk`, read into the lent buffer `base` (none for bytes held elsewhere), which is free again once written. */
  write(out: Writable, chunk: Buffer, base: Buffer | undefined): void {
    out.write(chunk, () => {
      if (!base) return;
      this.giveBack(base);
      this.onFree();
    });
  }

  /** The response is over: free buffers (and `unwritten` ones) go back to the pool, queued ones from their write callback. */
  end(unwritten: Iterable<Buffer> = []): void {
    this.over = true;
    for (const b of [...this.free.splice(0), ...unwritten]) this.pool.give(b);
  }
}

function readAt(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Bytes the kernel moved never pass the socket object, so its idle timer is re-armed by hand. */
function movedBytes(out: Writable): void {
  const socket = (out as Writable & { socket?: { timeout?: number; setTimeout(ms: number): unknown } | null }).socket;
  if (socket?.timeout) socket.setTimeout(socket.timeout);
}

/** Told of every byte sent; `kernel` when sendfile moved it, so never through the socket's own byte count. */
export type OnBytes = (n: number, kernel?: boolean) => void;

export class ResponseClosedError extends Error {
  readonly code = 'ERR_STREAM_PREMATURE_CLOSE';
  constructor() {
    super('the response closed before the blob was sent');
  }
}

/**
 * Sends bytes [start, end] (inclusive) of `fd` to `out`, then ends it (unless `endOut` is false:
 * one part of a multipart answer, whose next bytes the caller writes after this resolves). A buffer is reused only
 * after the writable's callback says its bytes are gone (to the kernel, or through TLS), so no
 * chunk is allocated per read and memory stays at BUFFERS x SEND_CHUNK per response, however
 * slow the client. With `zeroCopy` and a plain TCP response, the kernel moves the bytes instead
 * (sendfile), and a failure of it other than the client leaving copies the rest. Resolves when
 * `out` finished; rejects when it closed first or a read failed (then `out` is left as it is, for
 * the caller to cut).
 */
export function sendRange(
  fd: number,
  start: number,
  end: number,
  out: Writable,
  onBytes: OnBytes,
  pool = new BufferPool(0),
  zeroCopy?: ZeroCopy,
  endOut = true,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let wake: (() => void) | undefined;
    // A buffer still queued in the socket when this settles goes back from its write callback.
    const buffers = new ResponseBuffers(pool, BUFFERS, () => wake?.());
    let pos = start;
    let settled = false;
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      buffers.end();
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
    /**
     * Reads the next bytes (at most `max`) into a free buffer and queues them on `out`; false once
     * settled. A probe (the socket full after a sendfile turn) is the one chunk queued on a full
     * socket, and is read at once, not through the thread pool: under load most sendfile turns end
     * with the socket full, and a thread-pool round trip for each cost more CPU than the bytes.
     * sendfile itself reads the same file on this thread, so the event loop waits no longer than
     * it does for sendfile.
     */
    const copyNext = async (max: number, probe = false): Promise<boolean> => {
      // Backpressure: stop reading while the socket holds more than its high-water mark.
      await waitFor(() => (probe || !out.writableNeedDrain) && buffers.ready());
      if (settled) return false;
      const buf = buffers.lend();
      const length = Math.min(buf.length, max, end - pos + 1);
      let n: number;
      try {
        n = probe ? readSync(fd, buf, 0, length, pos) : await readAt(fd, buf, length, pos);
      } catch (err) {
        buffers.giveBack(buf);
        throw err;
      }
      if (n === 0) {
        buffers.giveBack(buf);
        throw new Error(`file ended at byte ${pos}, before byte ${end}`);
      }
      if (settled) {
        buffers.giveBack(buf);
        return false;
      }
      pos += n;
      buffers.write(out, n === buf.length ? buf : buf.subarray(0, n), buf);
      onBytes(n);
      return true;
    };
    /** Writes what the response holds back (its headers) with no body byte; false once settled. */
    const headersWritten = async (): Promise<boolean> => {
      let written = false;
      out.write(EMPTY, () => {
        written = true;
        wake?.();
      });
      await waitFor(() => written);
      return !settled;
    };
    /**
     * sendfile in turns of at most TURN bytes, with other responses run between turns. When the
     * socket is full, the next bytes go as one small write through the socket: waiting for its
     * callback is how the loop learns there is room again (as the headers' own write does first).
     * False when sendfile failed for a reason copying may not share: the rest is copied.
     */
    const zeroCopyLoop = async (sendfile: ZeroCopy, socketFd: number): Promise<boolean> => {
      // The headers go first on their own: their callback says the socket took them, without a
      // file read through the thread pool for a probe (one per response, most of them never full).
      let full = !(await headersWritten());
      while (pos <= end && !settled) {
        if (full) {
          if (!(await copyNext(PROBE, true))) return true;
          await waitFor(() => buffers.idle());
          if (pos > end || settled) break;
        } else {
          await new Promise<void>((r) => setImmediate(r));
          if (settled) return true;
          movedBytes(out);
        }
        full = false;
        for (let moved = 0; pos <= end && moved < TURN;) {
          let n: number;
          try {
            n = sendfile.send(socketFd, fd, pos, Math.min(end - pos + 1, TURN - moved));
          } catch (err) {
            if (err instanceof ZeroCopyError && err.peerGone) throw new ResponseClosedError();
            return false;
          }
          if (n === 0) {
            full = true;
            break;
          }
          pos += n;
          moved += n;
          onBytes(n, true);
        }
      }
      return true;
    };
    const loop = async (): Promise<void> => {
      const socketFd = zeroCopy && plainSocketFd(out);
      const done = zeroCopy && socketFd !== undefined ? await zeroCopyLoop(zeroCopy, socketFd) : false;
      if (!done) while (pos <= end && (await copyNext(SEND_CHUNK)));
      if (settled) return;
      // Bytes still queued on `out` go before anything written after this part: writes keep order.
      if (endOut) out.end(() => settle());
      else settle();
    };
    // The caller cuts the response on rejection (it owns the error reporting).
    loop().catch((err: Error) => settle(err));
  });
}
