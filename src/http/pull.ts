/** @module http/pull — thin handlers for the pull side of the API: manifests, blobs, tags, catalog. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import type { Logger } from 'pino';
import { parseDigest } from '../oci/digest.js';
import { manifestUnservable, rangeNotSatisfiable } from '../oci/error-catalogue.js';
import { parseManifestReference } from '../oci/reference.js';
import { accepts, isIndexType, parseAccept } from '../oci/mediatypes.js';
import { defaultPlatform, parseManifest } from '../oci/manifest.js';
import type { BlobHandle } from '../cache/blob-cache.js';
import type { RegistryCache } from '../cache/registry.js';
import type { Outcome } from '../ports/request-observer.js';
import type { Target } from '../upstream/target.js';
import { parseRange } from './range.js';
import { paging } from './params.js';
import { sendJson } from './respond.js';

export interface PullContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly target: Target;
  /** The repository name as the client addressed it (prefix included), for Link headers. */
  readonly clientName: string;
  readonly cache: RegistryCache;
  readonly logger: Logger;
  setOutcome(outcome: Outcome): void;
  /** Counts manifest and blob body bytes sent (metrics). */
  /** `kernel`: bytes sendfile moved, which the socket's own count never sees. */
  served(bytes: number, kernel?: boolean): void;
}

export async function getManifest(ctx: PullContext, reference: string): Promise<void> {
  const { req, res } = ctx;
  const ref = parseManifestReference(reference);
  if (!ref) throw manifestUnservable(`"${reference.slice(0, 200)}" is neither a valid tag nor a digest`, { reference: reference.slice(0, 200) });
  let m = await ctx.cache.manifest(ctx.target, ref);
  // A tag is negotiated against Accept; a digest names exact bytes and is served as stored.
  const accept = parseAccept(req.headers.accept);
  if (ref.kind === 'tag' && !accepts(accept, m.mediaType)) {
    const child = isIndexType(m.mediaType) ? defaultPlatform(parseManifest(m.body, m.mediaType)) : undefined;
    if (child && accepts(accept, child.mediaType)) m = await ctx.cache.manifest(ctx.target, { kind: 'digest', digest: child.digest });
    if (!accepts(accept, m.mediaType)) {
      throw manifestUnservable(
        `${ctx.clientName}:${reference} is a ${m.mediaType}, which this client's Accept header does not allow; use a client that supports it`,
        { mediaType: m.mediaType },
      );
    }
  }
  ctx.setOutcome(m.outcome);
  const etag = `"${m.digest}"`;
  res.setHeader('Docker-Content-Digest', m.digest);
  res.setHeader('ETag', etag);
  res.setHeader('Content-Type', m.mediaType);
  res.setHeader('Content-Length', m.body.length);
  if (req.headers['if-none-match'] === etag) {
    res.statusCode = 304;
    res.removeHeader('Content-Length');
    res.end();
    return;
  }
  res.statusCode = 200;
  if (req.method === 'HEAD') return void res.end();
  res.end(m.body);
  ctx.served(m.body.length);
}

export async function getBlob(ctx: PullContext, digest: string): Promise<void> {
  const { req, res, cache } = ctx;
  // Before any header: a digest with bytes a header cannot carry would otherwise throw there (500).
  parseDigest(digest);
  res.setHeader('Docker-Content-Digest', digest);
  res.setHeader('ETag', `"${digest}"`);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Content-Type', 'application/octet-stream');
  if (req.method === 'HEAD') {
    const { size, outcome } = await cache.headBlob(ctx.target, digest);
    ctx.setOutcome(outcome);
    res.setHeader('Content-Length', size);
    res.statusCode = 200;
    res.end();
    return;
  }
  const blob = await cache.blob(ctx.target, digest);
  try {
    await sendBlob(ctx, blob);
  } finally {
    await blob.close();
  }
}

async function sendBlob(ctx: PullContext, blob: BlobHandle): Promise<void> {
  const { req, res } = ctx;
  const { digest } = blob;
  ctx.setOutcome(blob.outcome);
  const rangeHeader = req.headers.range;
  const size = rangeHeader ? await blob.finalSize() : blob.size;
  const range = size === undefined ? { kind: 'none' as const } : parseRange(rangeHeader, size);
  if (range.kind === 'unsatisfiable' && size !== undefined) {
    throw rangeNotSatisfiable(`range ${rangeHeader} is outside blob ${digest} of ${size} bytes`, size);
  }
  let start = 0;
  let end = size === undefined ? undefined : size - 1;
  if (range.kind === 'range') {
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    res.setHeader('Content-Length', range.end - range.start + 1);
    ({ start, end } = range);
  } else {
    res.statusCode = 200;
    if (size !== undefined) res.setHeader('Content-Length', size);
  }
  const cut = (err: Error | null | undefined): void => {
    // A failed fill or a vanished client: the response is cut, never completed.
    if (err && !res.destroyed) res.destroy(err);
    if (err && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') {
      ctx.logger.warn({ digest, err: err.message }, 'blob response cut short');
    }
  };
  if (blob.send && end !== undefined) {
    // Stored content and fills alike: straight to the socket, no stream in between.
    await blob.send(res, start, end, (n, kernel) => ctx.served(n, kernel)).catch(cut);
    return;
  }
  const stream = blob.open(start, end);
  await new Promise<void>((resolve) => {
    pipeline(stream, res, (err) => {
      cut(err);
      resolve();
    });
    // Attached after the pipe, so no chunk can flow before it has somewhere to go.
    stream.on('data', (chunk: Buffer) => ctx.served(chunk.length));
  });
}

export async function listTags(ctx: PullContext): Promise<void> {
  const { n, last } = paging(ctx.url, 'tag');
  const page = await ctx.cache.tags(ctx.target, n, last);
  ctx.setOutcome(page.outcome);
  if (page.next !== undefined) {
    ctx.res.setHeader('Link', `</v2/${ctx.clientName}/tags/list?n=${n}&last=${encodeURIComponent(page.next)}>; rel="next"`);
  }
  sendJson(ctx.res, 200, { name: ctx.clientName, tags: page.tags }, ctx.req.method === 'HEAD');
}

/** `visible` leaves out repositories this client may not pull. */
export async function listCatalog(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  cache: RegistryCache,
  visible?: (name: string) => boolean,
): Promise<void> {
  const { n, last } = paging(url, 'repository');
  const page = await cache.catalog(n, last, visible);
  if (page.next !== undefined) res.setHeader('Link', `</v2/_catalog?n=${n}&last=${encodeURIComponent(page.next)}>; rel="next"`);
  sendJson(res, 200, { repositories: page.repositories }, req.method === 'HEAD');
}
