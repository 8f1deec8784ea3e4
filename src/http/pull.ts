/** @module http/pull — thin handlers for the pull side of the API: manifests, blobs, tags, catalog. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, finished, pipeline } from 'node:stream';
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
import { parseRanges, type ByteRange } from './range.js';
import { multipartBody, planMultipart, type MultipartPlan } from './multipart.js';
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
  res.setHeader('Content-Type', BLOB_TYPE);
  if (req.method === 'HEAD') {
    const { size, outcome } = await cache.headBlob(ctx.target, digest);
    ctx.setOutcome(outcome);
    // The same status and headers a GET would get, as distribution gives them.
    const ranges = rangesOf(req.headers.range, size, digest);
    if (ranges) rangeHeaders(res, ranges, size);
    else {
      res.setHeader('Content-Length', size);
      res.statusCode = 200;
    }
    res.end();
    return;
  }
  const blob = await cache.blob(ctx.target, digest, undefined, { ranged: req.headers.range !== undefined });
  try {
    await sendBlob(ctx, blob);
  } finally {
    await blob.close();
  }
}

const BLOB_TYPE = 'application/octet-stream';

/** The ranges to answer (undefined: the whole blob), or a 416. */
function rangesOf(header: string | undefined, size: number, digest: string): ByteRange[] | undefined {
  const parsed = parseRanges(header, size);
  if (parsed.kind === 'unsatisfiable') throw rangeNotSatisfiable(`range ${header} is outside blob ${digest} of ${size} bytes`, size);
  return parsed.kind === 'ranges' ? parsed.ranges : undefined;
}

/** Status and headers of a 206: one range, or a multipart body whose plan is returned. */
function rangeHeaders(res: ServerResponse, ranges: readonly ByteRange[], size: number): MultipartPlan | undefined {
  res.statusCode = 206;
  if (ranges.length === 1) {
    const { start, end } = ranges[0]!;
    res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    res.setHeader('Content-Length', end - start + 1);
    return undefined;
  }
  const plan = planMultipart(ranges, size, BLOB_TYPE);
  res.setHeader('Content-Type', plan.contentType);
  res.setHeader('Content-Length', plan.length);
  return plan;
}

async function sendBlob(ctx: PullContext, blob: BlobHandle): Promise<void> {
  const { req, res } = ctx;
  const { digest } = blob;
  ctx.setOutcome(blob.outcome);
  const rangeHeader = req.headers.range;
  const size = rangeHeader ? await blob.finalSize() : blob.size;
  const ranges = size === undefined ? undefined : rangesOf(rangeHeader, size, digest);
  const cut = (err: Error | null | undefined): void => {
    // A failed fill or a vanished client: the response is cut, never completed.
    if (err && !res.destroyed) res.destroy(err);
    if (err && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') {
      ctx.logger.warn({ digest, err: err.message }, 'blob response cut short');
    }
  };
  // Ranges of a blob not yet verified come from wherever their bytes are first (cache/lazy-range).
  const read = (r: ByteRange) => (blob.range ? blob.range(r.start, r.end) : blob.open(r.start, r.end));
  if (ranges && size !== undefined && ranges.length > 1 && !blob.range && blob.sendPart) {
    const plan = rangeHeaders(res, ranges, size)!;
    return sendParts(ctx, blob.sendPart, plan, cut);
  }
  if (ranges && size !== undefined && ranges.length > 1) {
    // Opened before any header: a source that fails at once is still answered with its error.
    const first = await read(ranges[0]!);
    const plan = rangeHeaders(res, ranges, size)!;
    const body = multipartBody(
      plan,
      (r) => (r === ranges[0] ? first : read(r)),
      (n) => ctx.served(n),
    );
    return streamOut(Readable.from(body, { objectMode: false }), res, cut);
  }
  if (ranges && blob.range) {
    const source = await blob.range(ranges[0]!.start, ranges[0]!.end);
    rangeHeaders(res, ranges, size!);
    return streamOut(
      Readable.from(
        counted(source, (n) => ctx.served(n)),
        { objectMode: false },
      ),
      res,
      cut,
    );
  }
  let start = 0;
  let end = size === undefined ? undefined : size - 1;
  if (ranges) {
    rangeHeaders(res, ranges, size!);
    ({ start, end } = ranges[0]!);
  } else {
    res.statusCode = 200;
    if (size !== undefined) res.setHeader('Content-Length', size);
  }
  if (blob.send && end !== undefined) {
    // Stored content and fills alike: straight to the socket, no stream in between.
    await blob.send(res, start, end, (n, kernel) => ctx.served(n, kernel)).catch(cut);
    return;
  }
  await streamOut(blob.open(start, end), res, cut, (chunk) => ctx.served(chunk.length));
}

/**
 * A multipart answer of a stored blob: each part's head written, then its bytes sent as a single
 * range is (sendfile on plain TCP), then the closing delimiter. Resolves when it ended or was cut.
 */
async function sendParts(
  ctx: PullContext,
  sendPart: NonNullable<BlobHandle['sendPart']>,
  plan: MultipartPlan,
  cut: (err: Error | null | undefined) => void,
): Promise<void> {
  const { res } = ctx;
  try {
    for (const part of plan.parts) {
      // Small; sendPart waits for the socket to take it before the kernel writes after it.
      res.write(part.head);
      await sendPart(res, part.range.start, part.range.end, (n, kernel) => ctx.served(n, kernel));
    }
  } catch (err) {
    cut(err as Error);
    return;
  }
  await new Promise<void>((resolve) => {
    finished(res, (err) => {
      cut(err);
      resolve();
    });
    res.end(plan.tail);
  });
}

/** Pipes `stream` into the response; resolves when it ended or was cut. */
function streamOut(stream: Readable, res: ServerResponse, cut: (err: Error | null | undefined) => void, onData?: (chunk: Buffer) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    pipeline(stream, res, (err) => {
      cut(err);
      resolve();
    });
    // Attached after the pipe, so no chunk can flow before it has somewhere to go.
    if (onData) stream.on('data', onData);
  });
}

async function* counted(source: AsyncIterable<Uint8Array>, onBytes: (n: number) => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    onBytes(chunk.length);
    yield chunk;
  }
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
