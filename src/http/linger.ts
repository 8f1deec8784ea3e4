/**
 * @module http/linger — an answer sent before the request's body was read to its end (a refusal: no credentials, a wrong
 * method or Content-Type, a malformed digest, a JSON body over its limit): the rest of the body is read and dropped, up to
 * a bound, so a closing connection does not reset under a client still sending (it would lose the answer: EPIPE) and a
 * kept-alive one reaches the client's next request instead of stalling on bytes nobody reads (docs/security.md "Request limits").
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Body bytes still taken in after the answer; a larger declared body is not waited for (the connection closes at once, as before). */
export const LINGER_BYTES = 64 * 1024 * 1024;
/** The longest a connection waits for the rest of a body it answered early. */
export const LINGER_MS = 10_000;

/**
 * Arms one request: when its answer finishes while its body is still coming, the body is dropped
 * as it arrives until it ends, the client goes, LINGER_BYTES more arrive or LINGER_MS pass; past
 * the bound the connection is destroyed. A connection node closes (destroySoon, right after
 * 'finish') ends its side at once, so the answer is whole, and reads on the same way.
 */
export function lingerOnEarlyAnswer(req: IncomingMessage, res: ServerResponse): void {
  // Held here: a request destroyed midway (a stream helper's early return) has no socket any more.
  const socket = req.socket as Socket | null;
  res.prependOnceListener('finish', () => {
    if (req.complete || !socket || socket.destroyed) return;
    if (req.destroyed || !mayStillCome(req)) {
      // Not waited for (or no longer parsed): the connection cannot carry another request, so it closes once the answer is out.
      socket.end();
      return;
    }
    const start = socket.bytesRead;
    const over = (): void => {
      socket.off('data', count);
      clearTimeout(timer);
    };
    const cut = (): void => {
      over();
      socket.destroy();
    };
    const count = (): void => {
      if (socket.bytesRead - start > LINGER_BYTES) cut();
    };
    const timer = setTimeout(cut, LINGER_MS).unref();
    socket.on('data', count);
    socket.once('close', over);
    req.once('end', over);
    // A handler that stopped reading midway left the body paused: drop the rest as it comes.
    req.resume();
    socket.destroySoon = function lingeringClose(this: Socket): void {
      req.off('end', over);
      req.once('end', cut);
      this.once('end', cut);
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
