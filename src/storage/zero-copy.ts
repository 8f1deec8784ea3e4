/** @module storage/zero-copy — the kernel's sendfile(2) from a blob file to a plain TCP socket (through koffi's FFI), and which responses may use it. */
import { constants } from 'node:os';
import type { Writable } from 'node:stream';

/**
 * Moves file bytes to a socket inside the kernel: no read into the process, no copy back out.
 * Nginx's figures in docs/performance.md show what that saves.
 */
export interface ZeroCopy {
  /**
   * Moves up to `count` bytes of `fileFd` from `position` to `socketFd` (non-blocking): the bytes
   * moved, or 0 when the socket has no room now. Throws a `ZeroCopyError` otherwise.
   */
  send(socketFd: number, fileFd: number, position: number, count: number): number;
}

export class ZeroCopyError extends Error {
  constructor(
    readonly errno: number,
    readonly code: string,
  ) {
    super(`sendfile failed: ${code}`);
  }

  /** The client went away: the response is over, copying instead would not help. */
  get peerGone(): boolean {
    return this.code === 'EPIPE' || this.code === 'ECONNRESET' || this.code === 'ENOTCONN';
  }
}

export type ZeroCopyLoad = { zeroCopy: ZeroCopy; reason?: undefined } | { zeroCopy?: undefined; reason: string };

const ERRNO = constants.errno as Record<string, number>;
const CODES = new Map(Object.entries(ERRNO).map(([code, n]) => [n, code]));

/** sendfile(2) where it exists (Linux) and koffi loads; otherwise why not, for the startup log. */
export async function loadZeroCopy(platform: string = process.platform): Promise<ZeroCopyLoad> {
  if (platform !== 'linux') return { reason: `sendfile(2) is used on Linux only, this is ${platform}` };
  try {
    const { default: koffi } = await import('koffi');
    // The process's own symbols: glibc's and musl's libc alike, whatever the file is called.
    const sendfile = koffi.load(null).func('intptr_t sendfile(int out_fd, int in_fd, _Inout_ int64_t *offset, size_t count)') as (
      out: number,
      inFd: number,
      offset: number[],
      count: number,
    ) => number;
    return {
      zeroCopy: {
        send(socketFd, fileFd, position, count) {
          const n = sendfile(socketFd, fileFd, [position], count);
          if (n > 0) return n;
          if (n === 0) throw new Error(`sendfile moved nothing at byte ${position}: the file ended early`);
          const errno = koffi.errno();
          if (errno === ERRNO.EAGAIN || errno === ERRNO.EINTR) return 0;
          throw new ZeroCopyError(errno, CODES.get(errno) ?? `errno ${errno}`);
        },
      },
    };
  } catch (err) {
    return { reason: `the koffi module could not bind sendfile(2): ${(err as Error).message}` };
  }
}

interface WithSocket {
  socket?: { encrypted?: boolean; _handle?: { fd?: unknown } | null } | null;
  hasHeader?: (name: string) => boolean;
}

/**
 * The descriptor of a response's own TCP socket, when the kernel may write its body directly:
 * plain TCP (TLS must encrypt every byte in the process) and a known Content-Length (so no chunk
 * framing goes between the bytes). Undefined for anything else, which then copies.
 */
export function plainSocketFd(out: Writable): number | undefined {
  const res = out as Writable & WithSocket;
  const socket = res.socket;
  if (!socket || socket.encrypted || typeof res.hasHeader !== 'function' || !res.hasHeader('content-length')) return undefined;
  // node keeps a TCP handle's descriptor on the handle; a pipe, a test double or a closed socket has none.
  const fd = socket._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
