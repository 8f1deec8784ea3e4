/** @module http/admin — the operations surface: /readyz, /metrics and the JSON admin API under /api/v1/. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ImageCatalog } from '../cache/images.js';
import type { Upstream } from '../upstream/target.js';
import type { WarmJobs, WarmPlatforms } from '../cache/warm-up.js';
import { parseImageReference } from '../oci/image-ref.js';
import { DEFAULT_PLATFORMS, parsePlatform } from '../oci/platform.js';
import type { Readiness } from '../ops/health.js';
import { AdminGate, checkStateChange, isStateChanging, type AdminAccess } from './admin-guard.js';
import { ApiError, readJsonBody, sendApiError } from './admin-io.js';
import { sendJson } from './respond.js';
import { bundleRoutes, type BundleDeps } from './admin-bundles.js';

/** The push queue's entries, when a push queue exists (write-behind); the seam it plugs into. */
export type QueueProvider = () => unknown[] | Promise<unknown[]>;

export interface AdminDeps {
  /** Who may use /api/ (see http/admin-guard). */
  readonly access: AdminAccess;
  readonly telemetry: {
    metrics(): Promise<{ contentType: string; body: string }>;
    stats(): unknown;
    readonly history: { toJSON(): unknown };
    /** The whole process group's history, when several workers serve (else history is read). */
    historyJSON?(): Promise<unknown>;
  };
  readonly readiness: () => Promise<Readiness>;
  readonly upstreams: readonly Upstream[];
  readonly catalog: ImageCatalog;
  readonly warm: WarmJobs;
  readonly queue?: QueueProvider;
  /** Bundle import into this berth's store (`berth import --server`). */
  readonly bundles?: BundleDeps;
  readonly logger: Logger;
}

/** Answers the request and resolves true when the path belongs to the operations surface. */
export type AdminHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

type Handler = (ctx: { req: IncomingMessage; url: URL; params: string[] }) => Promise<{ status?: number; body: unknown; headers?: Record<string, string> }>;

interface Route {
  readonly method: 'GET' | 'POST' | 'PUT';
  readonly pattern: RegExp;
  readonly handle: Handler;
  /** The Content-Type a state-changing call must carry (default application/json). */
  readonly bodyType?: string;
}

/** Most images one warm request may name. */
const MAX_WARM_IMAGES = 1000;

export function createAdminHandler(deps: AdminDeps): AdminHandler {
  const routes = buildRoutes(deps);
  const gate = new AdminGate(deps.access);
  return async (req, res, url) => {
    const path = url.pathname;
    const head = req.method === 'HEAD';
    if (path === '/readyz') {
      const r = await deps.readiness();
      sendJson(res, r.ready ? 200 : 503, r, head);
      return true;
    }
    if (path === '/metrics') {
      const { contentType, body } = await deps.telemetry.metrics();
      res.statusCode = 200;
      res.setHeader('Content-Type', contentType);
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.end(head ? undefined : body);
      return true;
    }
    if (path !== '/api' && !path.startsWith('/api/')) return false;
    res.setHeader('Cache-Control', 'no-store');
    try {
      checkEncoding(path);
      gate.admit(req);
      const matching = routes.map((r) => ({ r, m: r.pattern.exec(path) })).filter((x) => x.m !== null);
      if (matching.length === 0) throw new ApiError(404, 'NOT_FOUND', `no such admin endpoint: ${path.slice(0, 200)}; see docs/admin-api.md`);
      const method = head ? 'GET' : req.method;
      const hit = matching.find((x) => x.r.method === method);
      if (!hit) {
        const allow = [...new Set(matching.flatMap((x) => (x.r.method === 'GET' ? ['GET', 'HEAD'] : [x.r.method])))].join(', ');
        throw new ApiError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not supported on ${path.slice(0, 200)}; allowed: ${allow}`, { Allow: allow });
      }
      if (isStateChanging(req.method)) checkStateChange(req, hit.r.bodyType);
      const out = await hit.r.handle({ req, url, params: hit.m!.slice(1).map((p) => decodeURIComponent(p)) });
      for (const [k, v] of Object.entries(out.headers ?? {})) res.setHeader(k, v);
      sendJson(res, out.status ?? 200, out.body, head);
    } catch (err) {
      const sent = sendApiError(res, err, head);
      if (sent.status >= 500) deps.logger.error({ err, path }, 'admin API request failed');
    }
    return true;
  };
}

/** Malformed percent-encoding (`%ff`, `%`, `%zz`) is the client's mistake: 400 before any route decodes it. */
function checkEncoding(path: string): void {
  try {
    decodeURIComponent(path);
  } catch {
    throw new ApiError(400, 'INVALID_REQUEST', `the request path is not valid percent-encoding: ${path.slice(0, 200)}`);
  }
}

function buildRoutes(deps: AdminDeps): Route[] {
  const { catalog, warm, telemetry } = deps;
  const get = (pattern: RegExp, handle: Handler): Route => ({ method: 'GET', pattern, handle });
  const post = (pattern: RegExp, handle: Handler): Route => ({ method: 'POST', pattern, handle });
  return [
    get(/^\/api\/v1\/stats$/, async () => ({ body: await telemetry.stats() })),
    get(/^\/api\/v1\/stats\/history$/, async () => ({ body: telemetry.historyJSON ? await telemetry.historyJSON() : telemetry.history.toJSON() })),
    get(/^\/api\/v1\/upstreams$/, async () => ({
      body: deps.upstreams.map((u) => {
        const s = u.client.breaker.status();
        return {
          name: u.config.name,
          remoteurl: u.config.remoteurl,
          state: s.state,
          since: s.since ?? null,
          lastError: s.lastError ?? null,
          consecutiveFailures: s.consecutiveFailures,
          checks: u.client.checks ?? null,
        };
      }),
    })),
    get(/^\/api\/v1\/images$/, async ({ url }) => {
      const limit = Number(url.searchParams.get('limit') ?? 1000);
      if (!Number.isSafeInteger(limit) || limit < 1) throw new ApiError(400, 'INVALID_REQUEST', 'limit must be a positive integer');
      return { body: await catalog.list(url.searchParams.get('q') ?? '', Math.min(limit, 10_000)) };
    }),
    post(/^\/api\/v1\/warm$/, async ({ req }) => {
      const job = warm.start({ ...parseWarmBody(await readJsonBody(req)), source: 'api' });
      return { status: 202, body: job, headers: { Location: `/api/v1/warm/${job.id}` } };
    }),
    get(/^\/api\/v1\/warm$/, async () => ({ body: warm.list() })),
    get(/^\/api\/v1\/warm\/([^/]+)$/, async ({ params }) => {
      const job = warm.get(params[0]!);
      if (!job)
        throw new ApiError(404, 'NOT_FOUND', `no warm job ${params[0]!.slice(0, 100)}; jobs are kept in memory until berth restarts (the last 100 finished)`);
      return { body: job };
    }),
    post(/^\/api\/v1\/pin$/, async ({ req }) => {
      const image = imageField(await readJsonBody(req));
      return { body: { ok: true, image, ...(await catalog.pin(image, true)) } };
    }),
    post(/^\/api\/v1\/unpin$/, async ({ req }) => {
      const image = imageField(await readJsonBody(req));
      return { body: { ok: true, image, ...(await catalog.pin(image, false)) } };
    }),
    post(/^\/api\/v1\/evict$/, async ({ req }) => {
      const image = imageField(await readJsonBody(req));
      return { body: { ok: true, image, ...(await catalog.evict(image)) } };
    }),
    get(/^\/api\/v1\/queue$/, async () => ({ body: deps.queue ? await deps.queue() : [] })),
    ...(deps.bundles ? bundleRoutes(deps.bundles) : []),
  ];
}

function imageField(body: Record<string, unknown>): string {
  const image = body['image'];
  if (typeof image !== 'string' || image.trim() === '')
    throw new ApiError(400, 'INVALID_REQUEST', 'field "image" is required: a reference such as harbor.xing.com/xing/app:v1');
  checkReference(image, 'image');
  return image.trim();
}

function checkReference(text: string, field: string): void {
  try {
    parseImageReference(text);
  } catch (err) {
    throw new ApiError(400, 'INVALID_REQUEST', `${field}: ${(err as Error).message}`);
  }
}

/** Validates a warm request body: images, then platforms or allPlatforms, then pin. */
export function parseWarmBody(body: Record<string, unknown>): { images: string[]; platforms: WarmPlatforms; pin: boolean } {
  const { images, platforms, allPlatforms, pin } = body;
  if (!Array.isArray(images) || images.length === 0 || images.some((i) => typeof i !== 'string')) {
    throw new ApiError(400, 'INVALID_REQUEST', 'field "images" is required: a non-empty list of references such as ["harbor.xing.com/xing/app:v1"]');
  }
  if (images.length > MAX_WARM_IMAGES)
    throw new ApiError(400, 'INVALID_REQUEST', `field "images" lists ${images.length} references; at most ${MAX_WARM_IMAGES} per request`);
  images.forEach((i, n) => checkReference(i as string, `images[${n}]`));
  if (allPlatforms !== undefined && typeof allPlatforms !== 'boolean') throw new ApiError(400, 'INVALID_REQUEST', 'field "allPlatforms" must be true or false');
  if (pin !== undefined && typeof pin !== 'boolean') throw new ApiError(400, 'INVALID_REQUEST', 'field "pin" must be true or false');
  let chosen: WarmPlatforms = DEFAULT_PLATFORMS;
  if (platforms !== undefined) {
    if (!Array.isArray(platforms) || platforms.some((p) => typeof p !== 'string'))
      throw new ApiError(400, 'INVALID_REQUEST', 'field "platforms" must be a list such as ["linux/amd64","linux/arm64"]');
    if (allPlatforms === true && platforms.length > 0)
      throw new ApiError(400, 'INVALID_REQUEST', 'fields "platforms" and "allPlatforms" are both set; allowed: one of them');
    try {
      if (platforms.length > 0) chosen = platforms.map((p) => parsePlatform(p as string));
    } catch (err) {
      throw new ApiError(400, 'INVALID_REQUEST', `platforms: ${(err as Error).message}`);
    }
  }
  if (allPlatforms === true) chosen = 'all';
  return { images: (images as string[]).map((i) => i.trim()), platforms: chosen, pin: pin === true };
}
