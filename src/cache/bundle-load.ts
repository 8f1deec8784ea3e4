/** @module cache/bundle-load — what `berth import` does to a store, from the CLI (a stopped store) or the admin API (a running berth): blobs copied in and verified on a hasher's threads, images recorded under their names and pinned. */
import { parseImageReference, type ImageReference } from '../oci/image-ref.js';
import { parseManifest, MAX_MANIFEST_SIZE, type Descriptor } from '../oci/manifest.js';
import { isIndexType, isNonDistributable } from '../oci/mediatypes.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { ManifestRecords, TagIndex } from '../ports/repository-index.js';
import type { BlobStore, BundleSource, FileDigests } from '../storage/blob-files.js';
import { entryName as layoutName, REF_NAME } from '../storage/oci-layout.js';
import type { Target } from '../upstream/target.js';
import { manifestRow } from './referrers.js';

export interface LoadPorts {
  readonly blobs: BlobStore;
  readonly blobIndex: BlobIndex;
  readonly repos: ManifestRecords & TagIndex;
}

/** Whether the store holds the blob whole (a blob file exists only once verified). */
export async function holdsBlob(p: LoadPorts, digest: string, size: number): Promise<boolean> {
  if ((await p.blobs.size(digest)) !== size) return false;
  if (!(await p.blobIndex.get(digest))) await p.blobIndex.put(digest, size);
  return true;
}

/** The name an index entry carries, or `fallback` for an unnamed entry. */
function entryName(d: Descriptor, fallback?: string): string | undefined {
  return layoutName(d) ?? fallback;
}

/**
 * Stores one blob of a bundle through BlobStore.copyIn (a regular file copied by the kernel, a
 * region of a tar copied on a hasher's thread, a stream written as it comes; each hashed on the
 * hasher's threads); 'present' when it was
 * stored already (then nothing is read).
 */
export async function storeCopy(
  p: LoadPorts,
  digest: string,
  size: number,
  source: BundleSource,
  hasher: FileDigests,
  onChunk?: (n: number) => void,
): Promise<'stored' | 'present'> {
  if (await holdsBlob(p, digest, size)) return 'present';
  await p.blobs.copyIn(source, digest, size, hasher, onChunk);
  await p.blobIndex.put(digest, size);
  return 'stored';
}

/** Thrown for an image whose content is not all in the store after the blobs were loaded. */
class Incomplete extends Error {}

/**
 * Each entry of a layout's index.json recorded under its original name: manifests written, the
 * tag set, the top manifest pinned. Written to the index directly: nothing is queued for a push
 * upstream (the content came from there). `name` names the one unnamed entry (`--name`).
 */
export async function recordImages(
  entries: readonly Descriptor[],
  route: (ref: ImageReference) => Target,
  p: LoadPorts,
  name?: string,
): Promise<{ imported: string[]; problems: string[] }> {
  const imported: string[] = [];
  const problems: string[] = [];
  const unnamed = entries.filter((e) => entryName(e) === undefined);
  for (const entry of entries) {
    const entryTitle = entryName(entry, unnamed.length === 1 ? name : undefined);
    try {
      if (!entryTitle)
        throw new Error(
          unnamed.length > 1 && name
            ? `index.json has ${unnamed.length} entries without a name; --name names one (export them with names, e.g. skopeo copy ... oci:DIR:harbor.xing.com/xing/app:v1)`
            : `index.json entry ${entry.digest} has no ${REF_NAME} annotation (import with --name harbor.xing.com/xing/app:v1, or export with a name, e.g. skopeo copy ... oci:DIR:harbor.xing.com/xing/app:v1)`,
        );
      const ref = parseImageReference(entryTitle);
      if (ref.digest && ref.digest !== entry.digest) throw new Error(`names ${ref.digest} but the entry is ${entry.digest}`);
      const target = route(ref);
      await recordManifest(target, entry.digest, entry.mediaType, p);
      if (ref.tag && !ref.digest) await p.repos.setTag(target.key, target.repository, ref.tag, entry.digest);
      await p.blobIndex.setPinned(entry.digest, true);
      imported.push(entryTitle);
    } catch (err) {
      problems.push(`${entryTitle ?? entry.digest}: ${(err as Error).message}`);
    }
  }
  return { imported, problems };
}

async function recordManifest(target: Target, digest: string, mediaType: string | undefined, p: LoadPorts): Promise<void> {
  const size = await p.blobs.size(digest);
  if (size === undefined) throw new Incomplete(`manifest ${digest} is neither in the bundle nor in the store`);
  if (size > MAX_MANIFEST_SIZE) throw new Error(`manifest ${digest} is ${size} bytes, more than ${MAX_MANIFEST_SIZE}`);
  const body = await p.blobs.readAll(digest);
  const parsed = parseManifest(body, mediaType);
  if (isIndexType(parsed.mediaType)) {
    // An export for some platforms carries only their manifests: the others are fetched when a node asks (and the link is up).
    let present = 0;
    for (const child of parsed.manifests) {
      if ((await p.blobs.size(child.digest)) === undefined) continue;
      await recordManifest(target, child.digest, child.mediaType, p);
      present++;
    }
    if (present === 0) throw new Incomplete(`index ${digest} has none of its manifests in the bundle or the store`);
  } else {
    const missing: string[] = [];
    for (const b of parsed.blobs) if (!isNonDistributable(b.mediaType) && (await p.blobs.size(b.digest)) === undefined) missing.push(b.digest);
    if (missing.length > 0) throw new Incomplete(`manifest ${digest} needs ${missing.join(', ')}, which neither the bundle nor the store holds`);
  }
  await p.repos.putManifest(target.key, target.repository, manifestRow(digest, body.length, parsed));
}
