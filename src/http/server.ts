/** @module http/server — the HTTP(S) listener: request parsing, routing, access log, error envelopes. */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { serverTls, type TlsFiles } from './tls.js';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/types.js';
import { OciError } from '../oci/errors.js';
import type { RegistryCache } from '../cache/registry.js';
import type { Outcome, Target, Upstream } from '../cache/target.js';
import { getBlob, getManifest, listCatalog, listTags } from './pull.js';
import type { PushService } from '../cache/push-policy.js';
import type { ReferrersDeps } from '../cache/referrers.js';
import { dispatchWrite, getReferrers, headBlob, type PushContext } from './push-routes.js';
import { API_VERSION_HEADER, sendError, sendJson } from './respond.js';
import { ROUTE_METHODS, matchRoute, type Route } from './routes.js';
import { resolveTarget, upstreamFor } from '../cache/routing.js';
import type { AccessControl } from '../auth/access.js';
import { guard } from './guard.js';
import { MAX_HEADER_BYTES, answerClientErrors, checkRequest } from './limits.js';
import type { AdminHandler } from './admin.js';
import { routeLabel, type RequestObserver } from './observer.js';
import { isUiPath, serveUi } from './ui.js';
import { handlePeer, type PeerDeps } from './peer.js';
import type { UploadForwarder } from './forward.js';
import { INSTANCE_HEADER, VIA_HEADER, isOwnRequest } from '../upstream/loop.js';

const OWN_REQUEST = 'this request was sent by this berth itself: an upstream\'s name resolves to berth on the cache host; set resolve: for that upstream to the central registry\'s address, or remove the name from the cache host\'s hosts file';

export interface ServerDeps {
  readonly config: BerthConfig;
  readonly cache: RegistryCache;
  readonly upstreams: readonly Upstream[];
  readonly logger: Logger;
  readonly push: PushService;
  readonly referrers: ReferrersDeps;
  /** Authentication and authorisation; absent = every request allowed. */
  readonly access?: AccessControl;
  /** /readyz, /metrics and /api/v1/ (optional so the pull path stands alone in tests). */
  readonly admin?: AdminHandler;
  readonly observer?: RequestObserver;
  /** The endpoint the site's other replicas read from (`cluster:`). */
  readonly peer?: PeerDeps;
  /** The replica of the site holding an upload's bytes, when it is not this one. */
  readonly uploadOwner?: (id: string) => Promise<string | undefined>;
  readonly forwarder?: UploadForwarder;
  /** This berth's instance id, sent on every response so an upstream loop is recognised. */
  readonly instance?: string;
}

/** One listener; `tls` defaults to `http.tls` (other `http.listeners` entries pass their own or none). */
export function createServer(deps: ServerDeps, tls: TlsFiles | undefined = deps.config.http.tls): Server {
  const handler = (req: IncomingMessage, res: ServerResponse) => void handle(deps, req, res);
  const options = { maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: 0, keepAliveTimeout: 65_000 };
  const server = tls
    ? createHttpsServer({ ...options, ...serverTls(tls) }, handler)
    : createHttpServer(options, handler);
  answerClientErrors(server, deps.logger);
  return server;
}

async function handle(deps: ServerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = process.hrtime.bigint();
  const bytesBefore = req.socket.bytesWritten;
  let outcome: Outcome | undefined;
  let target: Target | undefined;
  let error: OciError | undefined;
  let user: string | undefined;
  let routeKind: string | undefined;
  let bodyBytes = 0;
  res.once('close', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    deps.observer?.request({
      route: routeKind ?? routeLabel((req.url ?? '').split('?')[0] ?? ''), method: req.method ?? '', status: res.statusCode,
      outcome, upstream: target?.upstream?.config.name, bodyBytes, seconds: ms / 1000,
    });
    if (!deps.config.log.accesslog) return;
    deps.logger.info({
      method: req.method,
      path: (req.url ?? '').split('?')[0],
      status: res.statusCode,
      bytes: req.socket.bytesWritten - bytesBefore,
      ms: Math.round(ms * 10) / 10,
      outcome,
      upstream: target?.upstream?.config.name,
      repository: target?.repository,
      user,
      complete: res.writableFinished,
      err: error?.message,
    }, 'request');
  });
  for (const [name, values] of Object.entries(deps.config.http.headers)) res.setHeader(name, [...values]);
  const head = req.method === 'HEAD';
  try {
    if (deps.instance !== undefined) {
      res.setHeader(INSTANCE_HEADER, deps.instance);
      if (isOwnRequest(req.headers[VIA_HEADER], deps.instance)) throw new OciError('UNAVAILABLE', OWN_REQUEST, { status: 508 });
    }
    const url = new URL(req.url ?? '/', 'http://berth.invalid');
    if (url.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' }, head);
    if (deps.peer && (await handlePeer(deps.peer, req, res, url))) return;
    if (deps.admin && (await deps.admin(req, res, url))) return;
    if (isUiPath(url.pathname)) return await serveUi(req, res, url.pathname);
    res.setHeader(API_VERSION_HEADER, 'registry/2.0');
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      throw new OciError('NAME_INVALID', 'request path is not valid percent-encoding', { status: 400 });
    }
    const route = matchRoute(path);
    if (!route) throw new OciError('UNSUPPORTED', `no such endpoint: ${req.method} ${url.pathname.slice(0, 200)}`, { status: 404 });
    routeKind = route.kind;
    if (!ROUTE_METHODS[route.kind].includes(req.method ?? '')) {
      throw new OciError('UNSUPPORTED', `${req.method} is not supported on this endpoint`, { headers: { Allow: ROUTE_METHODS[route.kind].join(', ') } });
    }
    checkRequest(req, route);
    const ns = url.searchParams.get('ns') ?? undefined;
    const resolve = (name: string) => resolveTarget(deps.upstreams, { name, ns, host: req.headers.host });
    if (route.kind === 'base') {
      await deps.access?.base(req.headers.authorization, upstreamFor(deps.upstreams, { ns, host: req.headers.host }));
      return sendJson(res, 200, {}, head);
    }
    if (route.kind === 'catalog') return listCatalog(req, res, url, deps.cache, await deps.access?.catalogFilter(req.headers.authorization, resolve));
    target = resolve(route.name);
    if (deps.access) user = await guard(deps.access, req, url, route, target, resolve);
    if (route.kind === 'upload' && deps.forwarder && deps.uploadOwner) {
      const owner = await deps.uploadOwner(route.id);
      if (owner) return await deps.forwarder.forward(req, res, owner);
    }
    const ctx: PushContext = {
      req, res, url, target, clientName: route.name, cache: deps.cache, logger: deps.logger,
      setOutcome: (o) => { outcome = o; },
      served: (n) => {
        bodyBytes += n;
        deps.observer?.served(route.kind, outcome, n);
      },
      push: deps.push, upstreams: deps.upstreams, referrers: deps.referrers,
    };
    await dispatch(ctx, route);
  } catch (err) {
    error = sendError(res, err, head);
    if (error.code === 'UNKNOWN') deps.logger.error({ err }, 'unexpected error while handling a request');
  }
}

async function dispatch(ctx: PushContext, route: Exclude<Route, { kind: 'base' } | { kind: 'catalog' }>): Promise<void> {
  const method = ctx.req.method;
  const reading = method === 'GET' || method === 'HEAD';
  if (route.kind === 'manifest' && reading) return getManifest(ctx, route.reference);
  if (route.kind === 'blob' && reading) return method === 'HEAD' ? headBlob(ctx, route.digest) : getBlob(ctx, route.digest);
  if (route.kind === 'tags') return listTags(ctx);
  if (route.kind === 'referrers') return getReferrers(ctx, route.digest);
  return dispatchWrite(ctx, route);
}
