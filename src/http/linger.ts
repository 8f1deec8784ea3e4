/**
 * @module http/linger — an answer sent before the request's body was read (a refusal: no credentials, a wrong method or
 * Content-Type, a malformed digest) on a connection that closes: the rest of the body is read and dropped, up to a bound,
 * before the socket goes, so the client reads the answer rather than a reset (docs/security.md "Request limits").
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Body bytes still taken in after the answer; a larger declared body is not waited for (the connection closes at once, as before). */
export const LINGER_BYTES = 64 * 1024 * 1024;
/** The longest a closing connection waits for the rest of a body it answered early. */
export const LINGER_MS = 10_000;

/**
 * Arms one request: when its answer finishes while its body is still coming and node is about to
 * close the connection, the socket ends its side (the answer is whole) but reads on until the body
 * ends, the client goes, LINGER_BYTES more arrive or LINGER_MS pass. Closing with unread bytes in
 * the kernel's buffer sends a reset, and a client still sending then loses the answer (EPIPE).
 */
export function lingerOnEarlyAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.prependOnceListener('finish', () => {
    if (req.complete || !mayStillCome(req)) return;
    const socket = req.socket as Socket | null;
    if (!socket || socket.destroyed) return;
    // node ends a connection it will not keep alive with destroySoon() right after 'finish' (resOnFinish).
    socket.destroySoon = function lingeringClose(this: Socket): void {
      const start = this.bytesRead;
      const done = (): void => {
        clearTimeout(timer);
        this.off('data', count);
        this.destroy();
      };
      const count = (): void => {
        if (this.bytesRead - start > LINGER_BYTES) done();
      };
      const timer = setTimeout(done, LINGER_MS).unref();
      this.on('data', count);
      req.once('end', done);
      req.once('close', done);
      this.once('close', () => clearTimeout(timer));
      if (this.writable) this.end();
    };
  });
}

/** Whether the client will go on sending: not when it declared more than the bound, nor while it waits for a 100 Continue it never got. */
function mayStillCome(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined && !(Number(length) <= LINGER_BYTES)) return false;
  if (req.headers.expect !== undefined && !req.readableDidRead) return false;
  return true;
}
