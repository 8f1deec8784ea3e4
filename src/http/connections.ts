/** @module http/connections — bounds on sockets: header and idle time, connections in all and per client address, refusals as envelopes. */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ConnectionLimits } from '../config/types.js';
import { OciError } from '../oci/errors.js';
import { sendError } from './respond.js';

/** A limit that bites is logged at most once per this interval, with the count refused since. */
const LOG_INTERVAL_MS = 10_000;

/** The whole answer to a request that never reaches a handler: an OCI envelope, then the connection closes. */
export function rawRefusal(status: number, code: OciError['code'], message: string, extra: readonly string[] = []): string {
  const body = JSON.stringify(new OciError(code, message).toEnvelope());
  return [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Docker-Distribution-Api-Version: registry/2.0',
    ...extra,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

/** Logs one line per interval for a recurring event, carrying how often it happened meanwhile. */
export function throttledLog(logger: Logger, now: () => number, msg: string): (fields: Record<string, unknown>) => void {
  let last = -Infinity;
  let suppressed = 0;
  return (fields) => {
    const t = now();
    if (t - last < LOG_INTERVAL_MS) {
      suppressed++;
      return;
    }
    logger.warn({ ...fields, since: suppressed }, msg);
    last = t;
    suppressed = 0;
  };
}

/**
 * Applies the limits to a server: node's own header timeout (checked often enough to matter),
 * the socket idle timeout, and connection counts. Long transfers keep working: no bound on a
 * request's total time, only on silence.
 */
export function limitConnections(server: Server, limits: ConnectionLimits, logger: Logger, now: () => number, tls = false): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = 0;
  server.timeout = limits.idleTimeoutMs;
  // Between requests too: a kept-alive connection is as idle as any.
  server.keepAliveTimeout = Math.min(server.keepAliveTimeout, limits.idleTimeoutMs);
  const refusedLog = throttledLog(logger, now, 'connection limit reached: refusing new connections');
  const idleLog = throttledLog(logger, now, 'closed idle connections (no bytes moved within http.idletimeout)');
  server.on('timeout', (socket: Socket) => {
    idleLog({ idleMs: limits.idleTimeoutMs, client: socket.remoteAddress });
    socket.destroy();
  });
  const perClient = new Map<string, number>();
  let open = 0;
  server.on('connection', (socket: Socket) => {
    const client = socket.remoteAddress ?? '';
    const mine = perClient.get(client) ?? 0;
    const which = open >= limits.maxConnections ? 'maxconnections' : mine >= limits.maxConnectionsPerClient ? 'maxconnectionsperclient' : undefined;
    if (which) {
      refusedLog({ limit: which, client, open, fromClient: mine });
      // No handler will see this socket: answer without reading the request, then close.
      socket.on('error', () => undefined);
      socket.pause();
      // Under TLS the socket here is still raw TCP: plain HTTP would be garbage to the client.
      if (tls) {
        socket.destroy();
        return;
      }
      const answer =
        which === 'maxconnections'
          ? rawRefusal(503, 'UNAVAILABLE', `berth has ${open} open connections, its limit (http.maxconnections); retry later`, ['Retry-After: 5'])
          : rawRefusal(
              429,
              'TOOMANYREQUESTS',
              `this client address has ${mine} open connections, the limit (http.maxconnectionsperclient); reuse connections or retry later`,
              ['Retry-After: 5'],
            );
      socket.end(answer);
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    open++;
    perClient.set(client, mine + 1);
    socket.once('close', () => {
      open--;
      const n = (perClient.get(client) ?? 1) - 1;
      if (n > 0) perClient.set(client, n);
      else perClient.delete(client);
    });
  });
  // An Expect other than 100-continue: node would answer a bare 417.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    sendError(res, new OciError('UNSUPPORTED', `Expect: ${String(req.headers.expect).slice(0, 100)} is not supported; only 100-continue is`, { status: 417 }));
  });
  // CONNECT has its own event; without a listener node drops the socket without a word.
  server.on('connect', (_req, socket: Socket) => {
    socket.on('error', () => undefined);
    socket.end(rawRefusal(405, 'UNSUPPORTED', 'CONNECT is not supported: berth is a registry, not a proxy', ['Allow: GET, HEAD, POST, PUT, PATCH, DELETE']));
  });
}

/** How often node checks headersTimeout: often enough that a short limit holds. */
export function checkingInterval(limits: ConnectionLimits): number {
  return Math.max(250, Math.min(30_000, Math.floor(limits.headersTimeoutMs / 4)));
}
