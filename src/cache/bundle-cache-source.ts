/** @module cache/bundle-cache-source — a berth's own cache as a bundle's source: manifests and blobs as its clients get them (stored, or fetched once from the upstream). */
import { isOciError } from '../oci/errors.js';
import type { ImageReference } from '../oci/image-ref.js';
import { parseManifest } from '../oci/manifest.js';
import { OCI_INDEX } from '../oci/mediatypes.js';
import type { Target } from '../upstream/target.js';
import type { ExportSource } from './bundle-build.js';
import type { RegistryCache } from './registry.js';

/** What the cache says when it, and its upstream, do not have something: the source answers "absent". */
const ABSENT = new Set(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'BLOB_UNKNOWN']);

const absent = (err: unknown): undefined => {
  if (isOciError(err) && ABSENT.has(err.code)) return undefined;
  throw err;
};

export function cacheSource(cache: RegistryCache, resolve: (image: ImageReference) => Target, name = 'this berth'): ExportSource {
  return {
    name,
    async manifest(image, ref) {
      try {
        const m = await cache.manifest(resolve(image), ref);
        return { digest: m.digest, mediaType: m.mediaType, body: m.body };
      } catch (err) {
        return absent(err);
      }
    },
    async blob(image, digest) {
      let handle;
      try {
        handle = await cache.blob(resolve(image), digest);
      } catch (err) {
        return absent(err);
      }
      // The handle keeps the blob from eviction until its stream closes: read to the end, or destroyed unread.
      const stream = handle.open();
      stream.once('close', () => void handle.close().catch(() => undefined));
      return stream;
    },
    async referrers(image, digest) {
      try {
        const page = await cache.referrers(resolve(image), digest, {});
        return [...parseManifest(Buffer.concat(page.body.map((b) => Buffer.from(b))), OCI_INDEX).manifests];
      } catch {
        return [];
      }
    },
    async close() {},
  };
}
