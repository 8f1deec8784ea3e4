/** @module http/connections — bounds on sockets: header and idle time, connections in all and per client address, refusals as envelopes. */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ConnectionLimits } from '../config/types.js';
import type { OciError } from '../oci/errors.js';
import { expectationFailed, methodNotAllowed, overloaded, tooManyRequests } from '../oci/error-catalogue.js';
import { sendError } from './respond.js';

/** A limit that bites is logged at most once per this interval, with the count refused since. */
const LOG_INTERVAL_MS = 10_000;

/** The whole answer to a request that never reaches a handler: an OCI envelope, then the connection closes. */
export function rawRefusal(err: OciError, method: 'GET' | 'HEAD' | 'unknown' = 'GET'): string {
  // A HEAD answer has the GET answer's headers and no body (RFC 9110 §9.3.2); with the method unknown, neither.
  const body = method === 'unknown' ? '' : JSON.stringify(err.toEnvelope());
  return [
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Docker-Distribution-Api-Version: registry/2.0',
    ...Object.entries(err.headers).map(([name, value]) => `${name}: ${value}`),
    'Connection: close',
    '',
    method === 'HEAD' ? '' : body,
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

/** How long a socket berth answered and gave up on may still read that answer before it is destroyed. */
export const REFUSAL_GRACE_MS = 1_000;

/** Beyond http.headerstimeout (and node's check of it), the most a connection without a request may live. */
const DEADLINE_SLACK_MS = 2_000;

/**
 * Events that mean a connection has sent a whole request head: it has left the header deadline.
 * (`checkContinue` is passed on as `request`; a listener for `upgrade` would stop node from
 * treating such requests as ordinary ones.)
 */
const REQUEST_EVENTS = ['request', 'checkExpectation', 'connect'] as const;

export interface ConnectionGuard {
  /**
   * Answers a connection no handler will serve and gives up on it: its slot is free at once, and
   * the socket is destroyed after REFUSAL_GRACE_MS even if the client never closes its side.
   */
  close(socket: Socket, answer: string): void;
}

/**
 * Applies the limits to a server: node's own header timeout (checked often enough to matter),
 * the socket idle timeout, and connection counts. Long transfers keep working: no bound on a
 * request's total time, only on silence. A connection counts from its first byte (before any TLS
 * handshake) until berth answers it for the last time, not until the client lets go of it.
 */
export function limitConnections(server: Server, limits: ConnectionLimits, logger: Logger, now: () => number, tls = false): ConnectionGuard {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = 0;
  server.timeout = limits.idleTimeoutMs;
  // Between requests too: a kept-alive connection waiting for its next request is as silent as a
  // new one, so it gets no longer than one would to send its headers.
  server.keepAliveTimeout = Math.min(server.keepAliveTimeout, limits.idleTimeoutMs, limits.headersTimeoutMs);
  const refusedLog = throttledLog(logger, now, 'connection limit reached: refusing new connections');
  const idleLog = throttledLog(logger, now, 'closed idle connections (no bytes moved within http.idletimeout)');
  server.on('timeout', (socket: Socket) => {
    // A kept-alive connection that sent no next request in time (node set keepAliveTimeout): routine, not news.
    if (socket.timeout === limits.idleTimeoutMs) idleLog({ idleMs: limits.idleTimeoutMs, client: socket.remoteAddress });
    socket.destroy();
  });
  const perClient = new Map<string, number>();
  // Held connections by peer address and port: under TLS, node's HTTP layer sees a TLS socket
  // wrapping the TCP one counted here, with the same peer.
  const slots = new Map<string, Slot>();
  let open = 0;
  const slotOf = (socket: Socket) => slots.get(peerOf(socket) ?? '');
  const close = (socket: Socket, answer: string) => {
    slotOf(socket)?.release();
    socket.on('error', () => undefined);
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(answer);
    setTimeout(() => socket.destroy(), REFUSAL_GRACE_MS).unref();
  };
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
          ? rawRefusal(overloaded(`berth has ${open} open connections, its limit (http.maxconnections); retry later`, 5))
          : rawRefusal(
              tooManyRequests(
                `this client address has ${mine} open connections, the limit (http.maxconnectionsperclient); reuse connections or retry later`,
                5,
              ),
            );
      close(socket, answer);
      return;
    }
    open++;
    perClient.set(client, mine + 1);
    const peer = peerOf(socket);
    // The backstop for every way a connection can stay without a request (a TLS handshake that
    // never ends, then headers that never come): node's own checks come first where they apply.
    const deadline = setTimeout(() => socket.destroy(), limits.headersTimeoutMs + checkingInterval(limits) + DEADLINE_SLACK_MS).unref();
    let held = true;
    const slot: Slot = {
      started: () => clearTimeout(deadline),
      release: () => {
        clearTimeout(deadline);
        if (!held) return;
        held = false;
        open--;
        const n = (perClient.get(client) ?? 1) - 1;
        if (n > 0) perClient.set(client, n);
        else perClient.delete(client);
        if (peer !== undefined && slots.get(peer) === slot) slots.delete(peer);
      },
    };
    if (peer !== undefined) slots.set(peer, slot);
    socket.once('close', slot.release);
  });
  for (const event of REQUEST_EVENTS) server.prependListener(event, (req: IncomingMessage) => slotOf(req.socket)?.started());
  // An Expect other than 100-continue: node would answer a bare 417.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    sendError(res, expectationFailed(String(req.headers.expect)));
  });
  // CONNECT has its own event; without a listener node drops the socket without a word.
  server.on('connect', (_req, socket: Socket) => {
    close(
      socket,
      rawRefusal(methodNotAllowed('CONNECT', ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], 'CONNECT is not supported: berth is a registry, not a proxy')),
    );
  });
  return { close };
}

interface Slot {
  /** The connection sent a whole request head. */
  readonly started: () => void;
  /** Gives the connection's count back; only the first call counts. */
  readonly release: () => void;
}

function peerOf(socket: Socket): string | undefined {
  return socket.remotePort === undefined ? undefined : `${socket.remoteAddress}|${socket.remotePort}`;
}

/** How often node checks headersTimeout: at least once a second, so an overdue connection is cut (and its slot freed) within a second of the limit. */
export function checkingInterval(limits: ConnectionLimits): number {
  return Math.max(250, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4)));
}
