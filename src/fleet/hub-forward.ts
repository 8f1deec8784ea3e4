/**
 * @module fleet/hub-forward — a hub that does not lead (several hubs on one Redis) answers the hub's
 * paths by forwarding them to the lead named in the lease, after its own token check; never elsewhere.
 * While no lead answers (start-up, a lead change), a site's poll is not refused: one without results
 * gets an empty answer, one with results waits for the next lead (docs/fleet.md, Hub replicas).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { readBodyBytes, sendApiError, type AdminCredentials } from '../http/admin-io.js';
import { sendJson } from '../http/respond.js';
import { overloaded } from '../oci/error-catalogue.js';
import { hubGate } from './auth.js';
import { hubPath } from './hub.js';
import type { InboxEntry } from '../ports/hub-state.js';

export interface ForwardDeps {
  readonly token: string;
  readonly admin?: AdminCredentials;
  readonly logger: Logger;
  readonly now: () => number;
  /** The lead's advertised base URL, read from the lease at each request; undefined while none is known. */
  readonly lead: () => string | undefined;
  /** This hub's own advertised URL and whether it leads now: a poll held while the lead changed may end up here. */
  readonly self: string;
  readonly leading: () => boolean;
  /** How long a poll carrying results, or a call from Harbor or the admin API, waits for a lead before it is refused (a lease lapses within its TTL). */
  readonly waitMs: number;
  /** Leaves a poll's results for the next lead (Redis), so the site need not wait for one. */
  readonly inbox?: (entry: InboxEntry) => Promise<void>;
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
const POLL_PATH = '/api/v1/fleet/poll';
/** How often a held poll looks for a lead again (the lease is read in memory, not from Redis). */
const LEAD_CHECK_MS = 100;
/** Hop-by-hop headers are the connection's own, never passed on. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host'];

/** Answers a hub path (true) by forwarding it to the lead, waiting a while for one when none is known (then 503 with Retry-After); false for other paths. */
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
      const forwarded = req.headers[FORWARDED] !== undefined;
      if (!forwarded && req.method === 'POST' && url.pathname === POLL_PATH) {
        await forwardPoll(d, req, res, url, agents);
        return true;
      }
      // A request another hub forwarded is never passed on again (no loop between two hubs that each think the other leads).
      if (forwarded) throw overloaded(NO_LEAD, RETRY_AFTER_S);
      await forwardCall(d, req, res, url, agents);
    } catch (err) {
      sendApiError(res, err, head);
    }
    return true;
  };
}

type Agents = Record<'http:' | 'https:', http.Agent>;

const NO_LEAD = 'no hub holds the lead yet (one takes it within seconds of the last one stopping); retry shortly';
/** Reads carry no body: one can be sent again to the next lead when a lead did not answer. */
const NO_BODY = Buffer.alloc(0);

/**
 * Harbor's calls and the admin API's: forwarded to the lead. While no lead is known (start-up, a
 * lead change) the call waits for one, up to `waitMs`, instead of being refused; a read whose lead
 * did not answer at all waits for the next. A write is sent once: a lead that took it and died
 * before answering may have acted on it, so its caller is told to retry (503).
 */
async function forwardCall(d: ForwardDeps, req: IncomingMessage, res: ServerResponse, url: URL, agents: Agents): Promise<void> {
  const until = d.now() + d.waitMs;
  const read = req.method === 'GET' || req.method === 'HEAD';
  for await (const lead of leadsToTry(d, until)) {
    if (lead === undefined) continue;
    const target = new URL(`${url.pathname}${url.search}`, `${lead}/`);
    if (!read) return forward(req, res, target, agentFor(agents, target), d.logger);
    try {
      return await forward(req, res, target, agentFor(agents, target), d.logger, NO_BODY);
    } catch (err) {
      if (d.now() >= until) throw err;
    }
  }
  throw overloaded(NO_LEAD, RETRY_AFTER_S);
}

/**
 * The leads to try in turn until `until`, a check every LEAD_CHECK_MS: the lead known now (this
 * hub's own address once it leads) unless it is the one that just failed (the caller asking for
 * the next one means it did not answer), then `undefined`, the caller's turn to act while no lead
 * answers. Ends at the deadline.
 */
async function* leadsToTry(d: ForwardDeps, until: number): AsyncGenerator<string | undefined, void> {
  let failed: string | undefined;
  for (;;) {
    const lead = d.leading() ? d.self : d.lead();
    if (lead !== undefined && lead !== failed) {
      yield lead;
      failed = lead;
    }
    yield undefined;
    if (d.now() >= until) return;
    await sleep(LEAD_CHECK_MS);
  }
}

function agentFor(agents: Agents, target: URL): http.Agent {
  return target.protocol === 'https:' ? agents['https:'] : agents['http:'];
}

/**
 * A site's poll: forwarded to the lead, or to this hub once it leads. While none answers, a poll
 * without results is answered with no tasks (the site asks again after its interval; the new lead
 * counts silence from its own start, so the site stays up), and one with results, which only an
 * answer from the lead acknowledges, waits for a lead up to `waitMs` before it is refused.
 */
async function forwardPoll(d: ForwardDeps, req: IncomingMessage, res: ServerResponse, url: URL, agents: Agents): Promise<void> {
  const body = await readBodyBytes(req);
  for await (const lead of leadsToTry(d, d.now() + d.waitMs)) {
    if (lead !== undefined) {
      const target = new URL(`${url.pathname}${url.search}`, `${lead}/`);
      try {
        await forward(req, res, target, agentFor(agents, target), d.logger, body);
        return;
      } catch {
        // Only a lead that did not answer at all gets here (its answer not begun): the site loses nothing.
        continue;
      }
    }
    if (!carriesResults(body) || (await leftForLead(d, body))) {
      sendJson(res, 200, { tasks: [], retryAfterMs: RETRY_AFTER_S * 1_000 });
      return;
    }
  }
  throw overloaded(`no hub answered as the lead within ${Math.round(d.waitMs / 1_000)} s; retry shortly`, RETRY_AFTER_S);
}

/** The poll's results left in the inbox for the next lead (true), or not (no inbox, unreadable, Redis failing). */
async function leftForLead(d: ForwardDeps, body: Buffer): Promise<boolean> {
  if (!d.inbox) return false;
  try {
    const poll = JSON.parse(body.toString('utf8')) as { report?: { name?: unknown }; results?: unknown };
    if (typeof poll.report?.name !== 'string' || !Array.isArray(poll.results)) return false;
    await d.inbox({ site: poll.report.name, results: poll.results as Array<Record<string, unknown>> });
    return true;
  } catch (err) {
    d.logger.warn({ err: (err as Error).message }, "cannot leave a poll's results for the hub lead; holding the poll");
    return false;
  }
}

/** Whether a poll carries results (or cannot be read: then the lead is left to judge it). */
function carriesResults(body: Buffer): boolean {
  try {
    const results = (JSON.parse(body.toString('utf8')) as { results?: unknown }).results;
    return Array.isArray(results) && results.length > 0;
  } catch {
    return true;
  }
}

/** `body`: the request's body already read (else it is streamed from `req`). */
function forward(req: IncomingMessage, res: ServerResponse, target: URL, agent: http.Agent, logger: Logger, body?: Buffer): Promise<void> {
  const headers: http.OutgoingHttpHeaders = { ...Object.fromEntries(Object.entries(req.headers).filter(([k]) => !HOP_BY_HOP.includes(k))), [FORWARDED]: '1' };
  if (body) headers['content-length'] = body.length;
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
    if (body) out.end(body);
    else req.pipe(out);
  });
}
