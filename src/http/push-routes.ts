/** @module http/push-routes — thin handlers for the push side of the API: uploads, mounts, manifest PUT, deletes, referrers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDigest } from '../oci/digest.js';
import { OciError, manifestTooLarge } from '../oci/errors.js';
import { blobUnknown, digestInvalid, rangeInvalid } from '../oci/error-catalogue.js';
import { MAX_MANIFEST_SIZE } from '../oci/manifest.js';
import { OCI_INDEX } from '../oci/mediatypes.js';
import type { PushService } from '../push/push-policy.js';
import { writeMode } from '../push/push-policy.js';
import type { Target, Upstream } from '../upstream/target.js';
import type { Reader } from '../push/push-visibility.js';
import { rangeHeader, type ChunkRange, type UploadSession } from '../push/uploads.js';
import { getBlob, type PullContext } from './pull.js';
import type { Route } from './routes.js';
import { resolveTarget } from '../cache/routing.js';
import { sendJsonParts } from './respond.js';
import { parseContentRange } from './range.js';
import { artifactTypeFilter, registryNamespace } from './params.js';

export interface PushContext extends PullContext {
  readonly push: PushService;
  readonly upstreams: readonly Upstream[];
  /**
   * Runs work the client waits for in silence (verifying an upload, a write-through push
   * upstream) with the connection's idle timeout suspended: the client is not the idle one.
   */
  waiting<T>(work: () => Promise<T>): Promise<T>;
  /** Whether this client may pull another repository (what its manifests may name from there). */
  readonly reader: Reader;
}

/** Writes: every one checks the target's pushmode first (405 UNSUPPORTED naming pushmode when readonly). */
export async function dispatchWrite(ctx: PushContext, route: Exclude<Route, { kind: 'base' | 'catalog' | 'tags' | 'referrers' }>): Promise<void> {
  const { push, target, req } = ctx;
  push.writable(target);
  const r = route;
  const method = req.method;
  if (r.kind === 'uploads') return startUpload(ctx);
  if (r.kind === 'upload') {
    const session = await push.uploads.get(target, r.id);
    if (method === 'GET') return uploadStatus(ctx, session, 204);
    if (method === 'PATCH') {
      await push.uploads.append(session, bodyOf(req), contentRange(req), contentLength(req));
      return uploadStatus(ctx, session, 202);
    }
    if (method === 'PUT') return finishUpload(ctx, session);
    await push.uploads.cancel(session);
    return empty(ctx.res, 204);
  }
  if (r.kind === 'manifest' && method === 'PUT') {
    const body = await readBody(req, MAX_MANIFEST_SIZE);
    const tagParams = ctx.url.searchParams.getAll('tag');
    const pushed = await ctx.waiting(() => push.putManifest(target, r.reference, body, header(req, 'content-type'), tagParams, ctx.reader));
    ctx.res.setHeader('Location', `/v2/${ctx.clientName}/manifests/${pushed.digest}`);
    ctx.res.setHeader('Docker-Content-Digest', pushed.digest);
    if (pushed.subject) ctx.res.setHeader('OCI-Subject', pushed.subject);
    if (tagParams.length > 0 && pushed.tags.length > 0) ctx.res.setHeader('OCI-Tag', pushed.tags.join(', '));
    return empty(ctx.res, 201);
  }
  if (r.kind === 'manifest') await push.deleteManifest(target, r.reference);
  else await push.deleteBlob(target, r.digest);
  return empty(ctx.res, 202);
}

/** POST: a cross-repository mount, a monolithic upload (`?digest=` with the body), or a new upload session. */
async function startUpload(ctx: PushContext): Promise<void> {
  const { push, target, url, req } = ctx;
  const mount = url.searchParams.get('mount');
  const from = url.searchParams.get('from');
  if (mount && from) {
    const source = sourceTarget(ctx, from);
    if (source && (await push.mount(target, source, mount))) return blobCreated(ctx, mount);
  }
  const digest = url.searchParams.get('digest');
  const session = await push.uploads.create(target, req.socket.remoteAddress ?? '');
  if (digest && !mount) {
    try {
      await push.uploads.append(session, bodyOf(req), undefined, contentLength(req));
      await ctx.waiting(() => push.completeUpload(target, session, digest));
    } finally {
      // A failure before finish() leaves the session to clean up here rather than to expire.
      await push.uploads.cancel(session).catch(() => undefined);
    }
    return blobCreated(ctx, digest);
  }
  return uploadStatus(ctx, session, 202);
}

async function finishUpload(ctx: PushContext, session: UploadSession): Promise<void> {
  const { push, target, url, req } = ctx;
  const digest = url.searchParams.get('digest');
  if (!digest) throw digestInvalid('PUT to finish an upload needs ?digest=<algorithm>:<hex> naming the content');
  parseDigest(digest);
  await push.uploads.append(session, bodyOf(req), contentRange(req), contentLength(req));
  await ctx.waiting(() => push.completeUpload(target, session, digest));
  return blobCreated(ctx, digest);
}

/** The repository a mount reads from, routed as the request is; undefined when it is not a valid name here. */
function sourceTarget(ctx: PushContext, from: string): Target | undefined {
  try {
    return resolveTarget(ctx.upstreams, { name: from, ns: registryNamespace(ctx.url), host: ctx.req.headers.host });
  } catch {
    return undefined;
  }
}

function uploadStatus(ctx: PushContext, session: UploadSession, status: number): void {
  const { res } = ctx;
  res.setHeader('Location', `/v2/${ctx.clientName}/blobs/uploads/${session.id}${nsQuery(ctx)}`);
  res.setHeader('Range', rangeHeader(ctx.push.uploads.offset(session)));
  res.setHeader('Docker-Upload-UUID', session.id);
  empty(res, status);
}

function blobCreated(ctx: PushContext, digest: string): void {
  ctx.res.setHeader('Location', `/v2/${ctx.clientName}/blobs/${digest}`);
  ctx.res.setHeader('Docker-Content-Digest', digest);
  empty(ctx.res, 201);
}

/** Keeps `?ns=` on upload URLs so the next request routes to the same upstream. */
function nsQuery(ctx: PushContext): string {
  const ns = registryNamespace(ctx.url);
  return ns ? `?ns=${encodeURIComponent(ns)}` : '';
}

/**
 * HEAD of a blob, which clients send before pushing it: where pushes are accepted, an
 * unreachable upstream means "not here" (404), so the client uploads the blob (write-behind
 * queues it, write-through then fails with an error naming the upstream) instead of stopping
 * at a bare 503, which clients print without its message.
 */
export async function headBlob(ctx: PushContext, digest: string): Promise<void> {
  try {
    await getBlob(ctx, digest);
  } catch (err) {
    const mode = writeMode(ctx.target);
    if (err instanceof OciError && err.code === 'UNAVAILABLE' && mode !== 'readonly' && mode !== 'plain') throw blobUnknown(digest);
    throw err;
  }
}

/** One page of referrers; a `Link: <...>; rel="next"` names the next (the filter carried along). */
export async function getReferrers(ctx: PushContext, digest: string): Promise<void> {
  const artifactType = artifactTypeFilter(ctx.url);
  const last = ctx.url.searchParams.get('last') ?? undefined;
  const page = await ctx.cache.referrers(ctx.target, digest, { artifactType, last });
  if (artifactType !== undefined) ctx.res.setHeader('OCI-Filters-Applied', 'artifactType');
  if (page.next !== undefined) {
    const query = new URLSearchParams(artifactType === undefined ? {} : { artifactType });
    query.set('last', page.next);
    ctx.res.setHeader('Link', `</v2/${ctx.clientName}/referrers/${digest}?${query.toString()}>; rel="next"`);
  }
  sendJsonParts(ctx.res, 200, page.body, page.length, ctx.req.method === 'HEAD', OCI_INDEX);
}

/** `Content-Range: <start>-<end>` of a chunk (distribution's form; a `bytes ` prefix is accepted too). */
function contentRange(req: IncomingMessage): ChunkRange | undefined {
  const raw = header(req, 'content-range');
  if (raw === undefined) return undefined;
  const range = parseContentRange(raw);
  if (!range) throw rangeInvalid(`Content-Range "${raw.slice(0, 100)}" is not <start>-<end>`);
  return range;
}

function contentLength(req: IncomingMessage): number | undefined {
  const raw = header(req, 'content-length');
  return raw === undefined ? undefined : Number(raw);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) throw manifestTooLarge(declared);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of bodyOf(req)) {
    total += (chunk as Buffer).length;
    if (total > limit) throw manifestTooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * The request body for a handler that may stop reading early (a limit, a full disk): stopping
 * must not destroy the connection before the error answer is out (server.ts drains the rest).
 */
function bodyOf(req: IncomingMessage): AsyncIterable<Uint8Array> {
  return req.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>;
}

function empty(res: ServerResponse, status: number): void {
  res.statusCode = status;
  res.setHeader('Content-Length', 0);
  res.end();
}
