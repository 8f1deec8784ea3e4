/** @module http/admin-bundles — the admin API's bundle import (`berth import --server`): which blobs are missing, blobs streamed in and verified, images recorded and pinned. */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { LoadPorts } from '../cache/bundle-load.js';
import type { FileDigests } from '../storage/blob-files.js';
import { isDigest } from '../oci/digest.js';
import type { ImageReference } from '../oci/image-ref.js';
import { parseImageReference } from '../oci/image-ref.js';
import type { BundleLog } from '../ports/bundle-log.js';
import type { Target } from '../upstream/target.js';
import { ApiError, readJsonBody } from './admin-io.js';

export interface BundleDeps {
  readonly ports: LoadPorts;
  /** The record of imports (GET /api/v1/bundles); absent, imports are not recorded. */
  readonly log?: BundleLog;
  readonly route: (ref: ImageReference) => Target;
  readonly logger: Logger;
  /** Hashes each blob written on worker threads: the event loop only moves bytes to disk. */
  readonly hasher: FileDigests;
}

type Handler = (ctx: { req: IncomingMessage; url: URL; params: string[] }) => Promise<{ status?: number; body: unknown }>;

export interface BundleRoute {
  readonly method: 'GET' | 'POST' | 'PUT';
  readonly pattern: RegExp;
  readonly handle: Handler;
  /** The Content-Type a state-changing call must carry (default application/json). */
  readonly bodyType?: string;
}

/** Most digests one "which are missing" call may ask about; the CLI asks in batches. */
export const MAX_ASKED_BLOBS = 10_000;
/** Most index.json entries one import may record. */
export const MAX_BUNDLE_ENTRIES = 1000;

/**
 * The import code (with tar-stream, which the layout module reads tars with) is loaded at the
 * first bundle call, not at start: most berths never take one (docs/performance.md).
 */
const bundleLoad = () => import('../cache/bundle-load.js');

export function bundleRoutes(deps: BundleDeps): BundleRoute[] {
  const { ports } = deps;
  return [
    {
      method: 'POST',
      pattern: /^\/api\/v1\/bundles\/missing$/,
      handle: async ({ req }) => {
        const asked = (await readJsonBody(req))['blobs'];
        if (!Array.isArray(asked) || asked.length > MAX_ASKED_BLOBS)
          throw new ApiError(400, 'INVALID_REQUEST', `field "blobs" must be a list of at most ${MAX_ASKED_BLOBS} {"digest","size"} objects`);
        const { holdsBlob } = await bundleLoad();
        const missing: string[] = [];
        for (const [i, b] of (asked as Array<{ digest?: unknown; size?: unknown }>).entries()) {
          const { digest, size } = blobField(b?.digest, b?.size, `blobs[${i}]`);
          if (!(await holdsBlob(ports, digest, size))) missing.push(digest);
        }
        return { body: { missing } };
      },
    },
    {
      method: 'PUT',
      pattern: /^\/api\/v1\/bundles\/blobs\/([^/]+)$/,
      bodyType: 'application/octet-stream',
      handle: async ({ req, params }) => {
        const length = req.headers['content-length'];
        if (length === undefined || !/^\d+$/.test(length))
          throw new ApiError(400, 'INVALID_REQUEST', 'a bundle blob needs a Content-Length: its size as the bundle declares it');
        // The body can be no longer than Content-Length (the HTTP parser holds to it), and a shorter one fails the size check.
        const { digest, size } = blobField(params[0], Number(length), 'the path');
        const { storeCopy } = await bundleLoad();
        // Written as it comes (never past Content-Length), then hashed on a hasher's thread while the next PUT arrives.
        const outcome = await storeCopy(ports, digest, size, req, deps.hasher);
        if (outcome === 'present') req.resume();
        return { status: outcome === 'stored' ? 201 : 200, body: { digest, size, stored: outcome === 'stored' } };
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/bundles$/,
      handle: async ({ req }) => {
        const body = await readJsonBody(req);
        const manifests = body['manifests'];
        if (!Array.isArray(manifests) || manifests.length === 0 || manifests.length > MAX_BUNDLE_ENTRIES)
          throw new ApiError(400, 'INVALID_REQUEST', `field "manifests" must list the bundle's index.json entries (1 to ${MAX_BUNDLE_ENTRIES})`);
        const [{ recordImages }, { parseLayoutIndex }] = await Promise.all([bundleLoad(), import('../storage/oci-layout.js')]);
        let entries;
        try {
          entries = parseLayoutIndex(JSON.stringify({ schemaVersion: 2, manifests })).manifests;
        } catch (err) {
          throw new ApiError(400, 'INVALID_REQUEST', `field "manifests": ${(err as Error).message.replace(/^index\.json /, '')}`);
        }
        const name = body['name'];
        if (name !== undefined) {
          if (typeof name !== 'string') throw new ApiError(400, 'INVALID_REQUEST', 'field "name" must be an image name such as harbor.xing.com/xing/app:v1');
          try {
            parseImageReference(name);
          } catch (err) {
            throw new ApiError(400, 'INVALID_REQUEST', `name: ${(err as Error).message}`);
          }
        }
        const source = typeof body['source'] === 'string' ? body['source'].slice(0, 500) : 'admin API';
        const counts = blobCounts(body['blobs']);
        const result = await recordImages(entries, deps.route, ports, name);
        deps.logger.info({ source, imported: result.imported, problems: result.problems.length }, 'bundle imported through the admin API');
        const row = await deps.log?.record({ source, images: result.imported, ...counts, problems: result.problems });
        return { body: { ...result, ...(row ? { id: row.id } : {}) } };
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/bundles$/,
      handle: async ({ url }) => {
        const limit = wholeParam(url, 'limit', 50, 1, 1000);
        const offset = wholeParam(url, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
        return { body: (await deps.log?.list(limit, offset)) ?? { total: 0, items: [] } };
      },
    },
  ];
}

function blobField(digest: unknown, size: unknown, where: string): { digest: string; size: number } {
  if (typeof digest !== 'string' || !isDigest(digest))
    throw new ApiError(400, 'INVALID_REQUEST', `${where}: ${JSON.stringify(String(digest).slice(0, 100))} is not a digest such as sha256:<64 hex>`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw new ApiError(400, 'INVALID_REQUEST', `${where}: size must be a whole number of bytes`);
  return { digest, size };
}

/** The client's count of blobs stored, skipped (already there) and refused, for the record. */
function blobCounts(value: unknown): { blobsStored: number; blobsSkipped: number; blobsRefused: number } {
  const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const n = (k: string) => {
    const x = v[k];
    if (x === undefined) return 0;
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) throw new ApiError(400, 'INVALID_REQUEST', `field "blobs.${k}" must be a whole number`);
    return x;
  };
  return { blobsStored: n('stored'), blobsSkipped: n('skipped'), blobsRefused: n('refused') };
}

function wholeParam(url: URL, key: string, fallback: number, min: number, max: number): number {
  const text = url.searchParams.get(key);
  if (text === null) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) throw new ApiError(400, 'INVALID_REQUEST', `${key} must be a whole number from ${min} to ${max}`);
  return n;
}
