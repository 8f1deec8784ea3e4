/**
 * @module fleet/hub-forward — a hub that does not lead (several hubs on one Redis) answers the hub's
 * paths by forwarding them to the lead named in the lease, after its own token check; never elsewhere.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { sendApiError, type AdminCredentials } from '../http/admin-io.js';
import { overloaded } from '../oci/error-catalogue.js';
import { hubGate } from './auth.js';
import { hubPath } from './hub.js';

export interface ForwardDeps {
  readonly token: string;
  readonly admin?: AdminCredentials;
  readonly logger: Logger;
  readonly now: () => number;
  /** The lead's advertised base URL, read from the lease at each request; undefined while none is known. */
  readonly lead: () => string | undefined;
}

/** Sites and Harbor retry after this many seconds while no hub leads (a lease lapses within seconds). */
const RETRY_AFTER_S = 1;
/** A forwarded request waits this long for the lead's answer (a site's poll times out at 30 s). */
const FORWARD_TIMEOUT_MS = 25_000;
/** Marks a forwarded request: a hub that receives one while not leading answers 503 rather than forward it again (no loop between two hubs that each think the other leads). */
const FORWARDED = 'x-berth-hub-forwarded';
/**
 * Connections to the lead, at most: the lead sees every forwarded request come from this hub's one
 * address, so they stay well under its http.maxconnectionsperclient (default 256) and are reused.
 */
const FORWARD_SOCKETS = 64;
/** An idle connection to the lead is closed by this hub first (servers close theirs after 5 s), so a reused one is not found closed. */
const IDLE_SOCKET_MS = 4_000;
/** Hop-by-hop headers are the connection's own, never passed on. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host'];

/** Answers a hub path (true) by forwarding it to the lead, or 503 with Retry-After while there is none; false for other paths. */
export function hubForwarder(d: ForwardDeps): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> {
  const admit = hubGate(d.token, d.admin, d.now);
  const options = { keepAlive: true, maxSockets: FORWARD_SOCKETS, timeout: IDLE_SOCKET_MS, scheduling: 'lifo' as const };
  const agents = { 'http:': new http.Agent(options), 'https:': new https.Agent(options) };
  return async (req, res, url) => {
    const owned = hubPath(url.pathname);
    if (!owned) return false;
    const head = req.method === 'HEAD';
    try {
      // The caller proves itself here first: an unauthenticated request never leaves this hub.
      admit(req, owned.readOnly);
      const lead = req.headers[FORWARDED] === undefined ? d.lead() : undefined;
      if (lead === undefined)
        throw overloaded('no hub holds the lead yet (one takes it within seconds of the last one stopping); retry shortly', RETRY_AFTER_S);
      const target = new URL(`${url.pathname}${url.search}`, `${lead}/`);
      await forward(req, res, target, target.protocol === 'https:' ? agents['https:'] : agents['http:'], d.logger);
    } catch (err) {
      sendApiError(res, err, head);
    }
    return true;
  };
}

function forward(req: IncomingMessage, res: ServerResponse, target: URL, agent: http.Agent, logger: Logger): Promise<void> {
  const headers = { ...Object.fromEntries(Object.entries(req.headers).filter(([k]) => !HOP_BY_HOP.includes(k))), [FORWARDED]: '1' };
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const out = client.request(target, { method: req.method, headers, agent, timeout: FORWARD_TIMEOUT_MS }, (answer) => {
      const passed = Object.fromEntries(Object.entries(answer.headers).filter(([k]) => !HOP_BY_HOP.includes(k)));
      res.writeHead(answer.statusCode ?? 502, passed);
      answer.pipe(res);
      answer.once('end', () => resolve());
      answer.once('error', () => {
        res.destroy();
        resolve();
      });
    });
    out.once('timeout', () => out.destroy(new Error(`no answer within ${FORWARD_TIMEOUT_MS / 1000} s`)));
    out.once('error', (err) => {
      logger.warn({ lead: target.origin, err: err.message }, 'the hub lead did not answer a forwarded request');
      if (res.headersSent) {
        res.destroy();
        resolve();
      } else reject(overloaded(`the hub holding the lead (${target.origin}) did not answer: ${err.message}; retry shortly`, RETRY_AFTER_S));
    });
    req.pipe(out);
  });
}
