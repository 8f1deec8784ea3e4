/** @module http/server — the HTTP(S) listener: request parsing, routing, access log, error envelopes. */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { serverTls, type TlsFiles } from './tls.js';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/types.js';
import { OciError, isOciError } from '../oci/errors.js';
import { badRequest, internalError, loopDetected, methodNotAllowed, nameInvalid, noSuchEndpoint } from '../oci/error-catalogue.js';
import type { RegistryCache } from '../cache/registry.js';
import type { Outcome } from '../ports/request-observer.js';
import type { Target, Upstream } from '../upstream/target.js';
import { getBlob, getManifest, listCatalog, listTags } from './pull.js';
import type { PushService } from '../push/push-policy.js';
import { dispatchWrite, getReferrers, headBlob, type PushContext } from './push-routes.js';
import { API_VERSION_HEADER, sendError, sendJson } from './respond.js';
import { ROUTE_METHODS, matchRoute, type Route } from './routes.js';
import { checkQuery, registryNamespace } from './params.js';
import { resolveTarget, upstreamFor } from '../cache/routing.js';
import type { AccessControl } from '../auth/access.js';
import { actionOf, guard } from './guard.js';
import { TOKEN_PATH, bearerChallenge, scopeFor, serveToken } from './token-endpoint.js';
import { MAX_HEADER_BYTES, answerClientErrors, checkRequest, continueWhenRead } from './limits.js';
import { checkingInterval, limitConnections } from './connections.js';
import { lingerOnEarlyAnswer } from './linger.js';
import type { AdminHandler } from './admin.js';
import type { RequestObserver } from '../ports/request-observer.js';
import { isUiPath, serveUi } from './ui.js';
import { handlePeer, type PeerDeps } from './peer.js';
import type { UploadForwarder } from './forward.js';
import { INSTANCE_HEADER, VIA_HEADER, isOwnRequest } from '../upstream/loop.js';

const OWN_REQUEST =
  "this request was sent by this berth itself: one of its upstreams leads back to berth; fix: point that upstream at the central registry's address (resolve: for a name, remoteurl for an IP)";

export interface ServerDeps {
  readonly config: BerthConfig;
  readonly cache: RegistryCache;
  readonly upstreams: readonly Upstream[];
  readonly logger: Logger;
  readonly push: PushService;
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
  readonly now?: () => number;
}

/** One listener; `tls` defaults to `http.tls` (other `http.listeners` entries pass their own or none). */
export function createServer(deps: ServerDeps, tls: TlsFiles | undefined = deps.config.http.tls): Server {
  const { config } = deps;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    lingerOnEarlyAnswer(req, res);
    // node drops a listener's promise: a fault that escaped handle() must still end the request.
    handle(deps, req, res).catch((err: unknown) => lastResort(deps.logger, req, res, err));
  };
  const limits = config.http.limits;
  const options = {
    maxHeaderSize: MAX_HEADER_BYTES,
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
    headersTimeout: limits.headersTimeoutMs,
    connectionsCheckingInterval: checkingInterval(limits),
    // Missing Host is refused below, with an envelope instead of node's bare 400.
    requireHostHeader: false,
  };
  const server = tls ? createHttpsServer({ ...options, ...serverTls(tls) }, handler) : createHttpServer(options, handler);
  const now = deps.now ?? Date.now;
  answerClientErrors(server, limitConnections(server, limits, deps.logger, now, Boolean(tls)), deps.logger, now);
  continueWhenRead(server);
  return server;
}

async function handle(deps: ServerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = process.hrtime.bigint();
  // Held here: node detaches req.socket once the connection closes, before 'close' handlers run.
  const socket = req.socket;
  const bytesBefore = socket.bytesWritten ?? 0;
  let outcome: Outcome | undefined;
  let target: Target | undefined;
  let error: OciError | undefined;
  let user: string | undefined;
  let routeKind: string | undefined;
  let scope: string | undefined;
  let bodyBytes = 0;
  let kernelBytes = 0;
  res.once('close', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    // A client that left before any answer: 499, as proxies log it, not the 200 nobody sent.
    const status = res.headersSent ? res.statusCode : CLIENT_CLOSED;
    deps.observer?.request({
      route: routeKind ?? routeLabel((req.url ?? '').split('?')[0] ?? ''),
      method: req.method ?? '',
      status,
      outcome,
      upstream: target?.upstream?.config.name,
      bodyBytes,
      seconds: ms / 1000,
    });
    if (!deps.config.log.accesslog) return;
    deps.logger.info(
      {
        method: req.method,
        path: (req.url ?? '').split('?')[0],
        status,
        bytes: Math.max(0, (socket.bytesWritten ?? bytesBefore) - bytesBefore) + kernelBytes,
        ms: Math.round(ms * 10) / 10,
        outcome,
        upstream: target?.upstream?.config.name,
        repository: target?.repository,
        user,
        complete: res.writableFinished,
        err: error?.message,
      },
      'request',
    );
  });
  for (const [name, values] of Object.entries(deps.config.http.headers)) res.setHeader(name, [...values]);
  const head = req.method === 'HEAD';
  try {
    if (deps.instance !== undefined) {
      res.setHeader(INSTANCE_HEADER, deps.instance);
      if (isOwnRequest(req.headers[VIA_HEADER], deps.instance)) throw loopDetected(OWN_REQUEST);
    }
    if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 && req.headers.host === undefined) {
      throw badRequest('HTTP/1.1 requests must carry a Host header');
    }
    const url = new URL(req.url ?? '/', 'http://berth.invalid');
    if (url.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' }, head);
    if (deps.peer && (await handlePeer(deps.peer, req, res, url))) return;
    if (deps.admin && (await deps.admin(req, res, url))) return;
    if (isUiPath(url.pathname)) return await serveUi(req, res, url.pathname);
    if (url.pathname === TOKEN_PATH && deps.access?.tokens) {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed(req.method, ['GET', 'HEAD']);
      const ns = registryNamespace(url);
      return await serveToken(deps.access, req, res, url, (name) => resolveTarget(deps.upstreams, { name, ns, host: req.headers.host }));
    }
    res.setHeader(API_VERSION_HEADER, 'registry/2.0');
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      throw nameInvalid('request path is not valid percent-encoding');
    }
    const route = matchRoute(path);
    if (!route) throw noSuchEndpoint(req.method, url.pathname);
    routeKind = route.kind;
    if (!ROUTE_METHODS[route.kind].includes(req.method ?? '')) {
      throw methodNotAllowed(req.method, ROUTE_METHODS[route.kind]);
    }
    checkRequest(req, route);
    checkQuery(url, route, req.method);
    const ns = registryNamespace(url);
    const resolve = (name: string) => resolveTarget(deps.upstreams, { name, ns, host: req.headers.host });
    if (route.kind === 'base') {
      await deps.access?.base(req.headers.authorization, upstreamFor(deps.upstreams, { ns, host: req.headers.host }), socket.remoteAddress);
      return sendJson(res, 200, {}, head);
    }
    if (route.kind === 'catalog')
      return await listCatalog(req, res, url, deps.cache, await deps.access?.catalogFilter(req.headers.authorization, resolve, socket.remoteAddress));
    scope = scopeFor(route.name, actionOf(route, req.method));
    target = resolve(route.name);
    if (deps.access) user = await guard(deps.access, req, url, route, target, resolve);
    if (route.kind === 'upload' && deps.forwarder && deps.uploadOwner) {
      const owner = await deps.uploadOwner(route.id);
      if (owner) return await deps.forwarder.forward(req, res, owner);
    }
    const ctx: PushContext = {
      req,
      res,
      url,
      target,
      clientName: route.name,
      cache: deps.cache,
      logger: deps.logger,
      setOutcome: (o) => {
        outcome = o;
      },
      served: (n, kernel) => {
        bodyBytes += n;
        if (kernel) kernelBytes += n;
        deps.observer?.served(route.kind, outcome, n, kernel);
      },
      push: deps.push,
      upstreams: deps.upstreams,
      reader: (t) => deps.access?.mayPull(req.headers.authorization, t, socket.remoteAddress) ?? Promise.resolve(true),
      waiting: async (work) => {
        socket.setTimeout(0);
        try {
          return await work();
        } finally {
          if (!socket.destroyed) socket.setTimeout(deps.config.http.limits.idleTimeoutMs);
        }
      },
    };
    await dispatch(ctx, route);
  } catch (err) {
    if (clientGone(req, socket, err)) {
      // Expected client behaviour (a cancelled pull or push), not a fault of berth.
      deps.logger.debug({ method: req.method, path: (req.url ?? '').split('?')[0], err: (err as Error).message }, 'client went away mid-request');
      res.destroy();
      return;
    }
    if (req.readableDidRead && !req.complete && !res.headersSent) {
      // Refused mid-body: take in (and drop) what is still coming, up to a bound, so the client
      // finishes sending and reads the error instead of a reset connection. A refusal before any
      // of the body was read (Content-Length over a limit) is answered at once, as before.
      res.setHeader('Connection', 'close');
      await drain(req);
    }
    const tokens = deps.access?.tokens;
    // With berth's own tokens every 401 points at /auth/token instead of asking for Basic (docs/design.md §7).
    const bearer = tokens && isOciError(err) && err.status === 401 && !(target && deps.access?.passesThrough(target));
    const answer = bearer && isOciError(err) ? bearerChallenge(err, req, tokens.service, scope, nsOf(req)) : err;
    error = isOciError(answer) && answer.code !== 'UNKNOWN' ? sendError(res, answer, head) : unexpected(deps.logger, req, res, answer);
  }
}

/**
 * The answer to an error no handler expected: one log line with an id, a 500 envelope carrying
 * the same id (the client's report finds the line), or a cut connection when headers are out.
 */
function unexpected(logger: Logger, req: IncomingMessage, res: ServerResponse, err: unknown): OciError {
  const requestId = randomUUID();
  logger.error({ err, requestId, method: req.method, path: (req.url ?? '').split('?')[0] }, 'unexpected error while handling a request');
  const message = isOciError(err) ? err.message : 'internal error; see the berth log';
  return sendError(res, internalError(message, requestId), req.method === 'HEAD');
}

/** What escaped handle() itself (its error answer failed too): still one 500 or a cut, never a request left hanging. */
function lastResort(logger: Logger, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  try {
    unexpected(logger, req, res, err);
  } catch {
    res.destroy();
  }
}

/** Body bytes read and dropped after an early error before the connection is simply closed. */
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;
const MAX_DRAIN_MS = 10_000;

function drain(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    let bytes = 0;
    const done = () => {
      clearTimeout(timer);
      req.off('data', count);
      resolve();
    };
    const count = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_DRAIN_BYTES) done();
    };
    const timer = setTimeout(done, MAX_DRAIN_MS);
    req.on('data', count);
    req.once('end', done);
    req.once('close', done);
    req.resume();
  });
}

/** The request's ns= when it is well-formed (a malformed one was already refused). */
function nsOf(req: IncomingMessage): string | undefined {
  try {
    return registryNamespace(new URL(req.url ?? '/', 'http://berth.invalid'));
  } catch {
    return undefined;
  }
}

/** The access-log status of a request whose client left before any answer (nginx's convention). */
const CLIENT_CLOSED = 499;

/** The error came from the client's own connection going away (not from the upstream or the disk). */
function clientGone(req: IncomingMessage, socket: Socket, err: unknown): boolean {
  if (!socket.destroyed && !req.destroyed) return false;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNABORTED') return true;
  return !req.complete && !(err instanceof OciError);
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

/** The route label for paths outside the OCI route table. */
export function routeLabel(path: string): string {
  if (path.startsWith('/api/')) return 'api';
  if (path === '/metrics') return 'metrics';
  if (path === '/healthz' || path === '/readyz') return 'health';
  if (path === '/ui' || path.startsWith('/ui/')) return 'ui';
  return 'other';
}
