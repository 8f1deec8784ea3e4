/** @module http/limits — refusing oversized or malformed requests early, each with a 4xx OCI error envelope. */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { rawRefusal, throttledLog, type ConnectionGuard } from './connections.js';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { manifestTooLarge } from '../oci/errors.js';
import { badRequest, unparsableRequest } from '../oci/error-catalogue.js';
import { MAX_MANIFEST_SIZE } from '../oci/manifest.js';
import type { Route } from './routes.js';

/** Request line plus headers; node answers larger ones itself, through onClientError below. */
export const MAX_HEADER_BYTES = 16 * 1024;

/**
 * Requests node's parser rejects (headers over MAX_HEADER_BYTES, malformed syntax) never reach
 * a handler; answer them with an envelope too, instead of node's bare status line.
 */
export function answerClientErrors(server: Server, guard: ConnectionGuard, logger: Logger, now: () => number = Date.now): void {
  // Held connections run out together: one line per interval, not one per socket.
  const overdue = throttledLog(logger, now, 'cut connections whose request headers did not arrive within http.headerstimeout');
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const message =
      status === 431
        ? `request line and headers exceed ${MAX_HEADER_BYTES} bytes; send fewer or shorter headers`
        : status === 408
          ? 'request headers did not arrive in time'
          : `malformed HTTP request (${err.code ?? 'parse error'})`;
    // Docker probes every registry with a TLS handshake first: on a plain port that is routine, not news.
    const probe = err.code === 'HPE_INVALID_METHOD' && (err as { rawPacket?: Buffer }).rawPacket?.[0] === 0x16;
    if (status === 408) overdue({ client: socket.remoteAddress });
    else
      logger[probe ? 'debug' : 'info'](
        { status, err: err.code },
        probe ? 'refused a TLS handshake on a plain-HTTP port (Docker probes TLS first)' : 'refused a request the HTTP parser rejected',
      );
    // The answer ends the connection: its slot is free now, not when the client gets round to closing.
    guard.close(socket, rawRefusal(unparsableRequest(status, message), refusedMethod(err)));
  });
}

/**
 * The refused request's method as far as its answer's body goes. The parser hands over only the
 * chunk it failed on: when that is not the request's start the method is unknown, and the answer
 * carries no body, since a body a HEAD client does not expect breaks its parser.
 */
function refusedMethod(err: NodeJS.ErrnoException): 'GET' | 'HEAD' | 'unknown' {
  // A request cut at the headers timeout keeps its envelope: a slow client is most likely a GET.
  if (!err.code?.startsWith('HPE_')) return 'GET';
  const raw = (err as { rawPacket?: Buffer }).rawPacket;
  const method = raw && /^([A-Z]+) /.exec(raw.subarray(0, 16).toString('latin1'))?.[1];
  return method === undefined ? 'unknown' : method === 'HEAD' ? 'HEAD' : 'GET';
}

/**
 * `Expect: 100-continue`: the 100 goes out only when a handler starts reading the body, so a
 * request refused before that (too large, not allowed, an unknown upload, a full disk) gets its
 * final answer alone and the client never sends the body. That answer closes the connection:
 * otherwise the body a client sends anyway would be read as its next request.
 */
export function continueWhenRead(server: Server): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('Connection', 'close');
    const reading = (event: string | symbol) => {
      if (event !== 'data' && event !== 'readable') return;
      req.off('newListener', reading);
      if (res.headersSent) return;
      res.removeHeader('Connection');
      res.writeContinue();
    };
    req.on('newListener', reading);
    server.emit('request', req, res);
  });
}

/** Size and shape limits that need the route: bodies only where the API takes one, manifests of at most 4 MiB. */
export function checkRequest(req: IncomingMessage, route: Route): void {
  const length = req.headers['content-length'];
  const hasBody = (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
  const takesBody = (route.kind === 'manifest' && req.method === 'PUT') || route.kind === 'uploads' || route.kind === 'upload';
  if (hasBody && !takesBody) {
    throw badRequest(`${req.method} ${route.kind} requests carry no body; send it without one`);
  }
  if (route.kind === 'manifest' && req.method === 'PUT' && length !== undefined && Number(length) > MAX_MANIFEST_SIZE) {
    throw manifestTooLarge(Number(length));
  }
}
