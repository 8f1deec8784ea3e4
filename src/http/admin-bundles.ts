/** @module http/admin-bundles — the admin API's bundle import (`berth import --server`): which blobs are missing, blobs streamed in and verified, images recorded and pinned. */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { holdsBlob, recordImages, storeBlob, type LoadPorts } from '../cache/bundle-load.js';
import { isDigest } from '../oci/digest.js';
import type { ImageReference } from '../oci/image-ref.js';
import { parseImageReference } from '../oci/image-ref.js';
import type { Target } from '../upstream/target.js';
import { parseLayoutIndex } from '../storage/oci-layout.js';
import { ApiError, readJsonBody } from './admin-io.js';

export interface BundleDeps {
  readonly ports: LoadPorts;
  readonly route: (ref: ImageReference) => Target;
  readonly logger: Logger;
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
        const outcome = await storeBlob(ports, digest, size, req);
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
        const result = await recordImages(entries, deps.route, ports, name);
        deps.logger.info({ imported: result.imported, problems: result.problems.length }, 'bundle imported through the admin API');
        return { body: result };
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
