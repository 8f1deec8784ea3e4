/**
 * @module cache/bundle-build — what a bundle holds and how it is written, whoever reads the images:
 * `berth export` (a store, a berth or a registry) and the hub's site bundles (its own cache).
 */
import { referrersTag, signatureTag } from './cosign.js';
import { formatImageReference, type ImageReference } from '../oci/image-ref.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { isIndexType, isNonDistributable } from '../oci/mediatypes.js';
import { formatPlatform, selectManifests, type Platform } from '../oci/platform.js';
import type { ManifestReference } from '../oci/reference.js';
import { BlobMismatchError, REF_NAME, type LayoutWriter } from '../storage/oci-layout.js';
import type { FileDigests } from '../storage/blob-files.js';
import { parseDigest } from '../oci/digest.js';

export interface FetchedManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Buffer;
}

/** Where a bundle's images are read: manifests (small, in memory) and blobs (streamed). */
export interface ExportSource {
  /** What the source is, for messages. */
  readonly name: string;
  /** The manifest a reference names; undefined when the source does not have it. */
  manifest(image: ImageReference, ref: ManifestReference): Promise<FetchedManifest | undefined>;
  /** A blob's bytes as a stream (verified by the layout writer); undefined when absent. */
  blob(image: ImageReference, digest: string): Promise<AsyncIterable<Uint8Array> | undefined>;
  /** The stored file holding a blob whole, when the source is a store on this machine (a layout writer may copy it whole). */
  file?(digest: string): Promise<string | undefined>;
  /** Descriptors of the manifests that name `digest` as their subject. */
  referrers(image: ImageReference, digest: string): Promise<Descriptor[]>;
  close(): Promise<void>;
}

/** One image planned for the bundle: its manifests (in memory, small) and the blobs to stream. */
export interface Planned {
  readonly name: string;
  readonly image: ImageReference;
  readonly manifests: FetchedManifest[];
  readonly blobs: Descriptor[];
  readonly entries: Descriptor[];
}

/** A blob to write, with the image whose repository it is read from. */
export interface BundleBlob {
  readonly d: Descriptor;
  readonly image: ImageReference;
}

/** The name an image gets in index.json: as the user wrote it, its tag explicit (or `name@digest`). */
export function bundleName(image: ImageReference): string {
  return formatImageReference(image.digest ? { ...image, tag: undefined } : image);
}

/** Each blob once, even when images share it; what the site holds already stays out. */
export function bundleBlobs(plans: readonly Planned[], held: ReadonlySet<string>): Map<string, BundleBlob> {
  const blobs = new Map<string, BundleBlob>();
  for (const p of plans) for (const d of p.blobs) if (!held.has(d.digest) && !blobs.has(d.digest)) blobs.set(d.digest, { d, image: p.image });
  return blobs;
}

/** How many distinct blobs of the plans `held` leaves out. */
export function leftOut(plans: readonly Planned[], held: ReadonlySet<string>): number {
  return [...new Set(plans.flatMap((p) => p.blobs.map((b) => b.digest)))].filter((d) => held.has(d)).length;
}

export interface WriteOptions {
  /** Blobs in flight: a directory takes two (one's fsync while the next is read); a tar is one stream (1). */
  readonly window: number;
  /** A tar cannot drop what it has begun: any failed blob gives the archive up whole. */
  readonly tar: boolean;
  /** Wraps each blob's body (a progress bar counting it). */
  readonly body?: (d: Descriptor, body: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>;
  /** A blob the source lacks throws instead of being named in `failures` (a bundle streamed to a client cannot say so at the end). */
  readonly strict?: boolean;
  /** A blob the layout holds already (a directory written again). */
  readonly skipped?: (d: Descriptor) => void;
  /** A blob copied whole from the source's file (no body passed through `body`). */
  readonly copied?: (d: Descriptor) => void;
  /** Hashes a source's files on other threads, so a tar's blobs are verified off the main thread. */
  readonly hasher?: FileDigests;
}

/**
 * Writes the plans' manifests, then `blobs`, then index.json. A blob the source lacks, or (in a
 * directory) one whose digest fails, is named in `failures` and left out; anything else throws
 * and the caller aborts the writer.
 */
export async function writeBundle(
  source: ExportSource,
  plans: readonly Planned[],
  blobs: ReadonlyMap<string, BundleBlob>,
  writer: LayoutWriter,
  opts: WriteOptions,
  failures: string[],
): Promise<{ written: number; skipped: number }> {
  let written = 0;
  let skipped = 0;
  for (const p of plans) for (const m of p.manifests) await writer.addBytes(m.digest, m.body);
  const inflight = new Set<Promise<void>>();
  let failure: Error | undefined;
  for (const { d, image } of blobs.values()) {
    if (failure) break;
    if (await writer.has(d.digest, d.size)) {
      skipped++;
      opts.skipped?.(d);
      continue;
    }
    const file = writer.addFile && source.file ? await source.file(d.digest) : undefined;
    const body = file === undefined ? await source.blob(image, d.digest) : undefined;
    if (file === undefined && !body) {
      if (opts.strict) throw new Error(`blob ${d.digest} of ${formatImageReference(image)} is not in ${source.name}`);
      failures.push(`${formatImageReference(image)}: blob ${d.digest} is not in ${source.name}`);
      continue;
    }
    const wrapped = body && opts.body ? opts.body(d, body) : body;
    const stored = !writer.addFile && writer.addHashed && opts.hasher && source.file ? await source.file(d.digest) : undefined;
    const adding =
      file !== undefined
        ? writer.addFile!(d.digest, d.size, file).then(() => opts.copied?.(d))
        : stored !== undefined
          ? writer.addHashed!(d.digest, d.size, wrapped!, opts.hasher!.hash(stored, parseDigest(d.digest).algorithm))
          : writer.addBlob(d.digest, d.size, wrapped!);
    const add: Promise<void> = adding
      .then(
        () => {
          written++;
        },
        (err: Error) => {
          // A stream refused before it was read still holds what opened it (a file, a cache handle).
          (body as { destroy?: () => void } | undefined)?.destroy?.();
          // Removed from the store (evicted) since it was looked up: named like a blob the source lacks.
          if (file !== undefined && (err as NodeJS.ErrnoException).code === 'ENOENT')
            failures.push(`${formatImageReference(image)}: blob ${d.digest} is not in ${source.name}`);
          else if (!(err instanceof BlobMismatchError) || opts.tar) failure ??= err;
          else failures.push(`${formatImageReference(image)}: ${err.message} in ${source.name}; not exported (run berth fsck there)`);
        },
      )
      .finally(() => inflight.delete(add));
    inflight.add(add);
    while (inflight.size >= opts.window) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  if (failure) throw failure;
  await writer.finish(plans.flatMap((p) => p.entries));
  return { written, skipped };
}

/** One image's manifests (the platforms chosen from an index), blobs, signatures and referrers. */
export async function planImage(source: ExportSource, image: ImageReference, platforms: readonly Platform[] | 'all'): Promise<Planned> {
  const name = bundleName(image);
  const top = await source.manifest(image, image.reference);
  if (!top) throw new Error(`not found in ${source.name}`);
  const manifests: FetchedManifest[] = [top];
  const blobs: Descriptor[] = [];
  const entry = (m: FetchedManifest, ref: string): Descriptor => ({
    mediaType: m.mediaType,
    digest: m.digest,
    size: m.body.length,
    annotations: { [REF_NAME]: ref },
  });
  const entries: Descriptor[] = [entry(top, name)];
  const images: FetchedManifest[] = [];
  const parsed = parseManifest(top.body, top.mediaType);
  if (isIndexType(parsed.mediaType)) {
    const chosen = selectManifests(parsed.manifests, platforms === 'all' ? 'all' : [...platforms]);
    if (chosen.length === 0) {
      const wanted = platforms === 'all' ? 'any platform' : platforms.map(formatPlatform).join(', ');
      throw new Error(`index ${top.digest} has no manifest for ${wanted}`);
    }
    for (const c of chosen) {
      const child = await source.manifest(image, { kind: 'digest', digest: c.digest });
      if (!child) throw new Error(`manifest ${c.digest} (${c.platform?.os ?? '?'}/${c.platform?.architecture ?? '?'}) is not in ${source.name}`);
      manifests.push(child);
      images.push(child);
    }
  } else {
    images.push(top);
  }
  for (const m of images) blobs.push(...parseManifest(m.body, m.mediaType).blobs.filter((b) => !isNonDistributable(b.mediaType)));
  // Signatures and other referrers come along: by the referrers API, and cosign's tag scheme.
  const repoName = formatImageReference({ ...image, tag: undefined, digest: undefined });
  for (const subject of [top, ...images.filter((m) => m !== top)]) {
    const found = [...(await source.referrers(image, subject.digest)).map((d) => ({ d, tag: undefined as string | undefined }))];
    const sigTag = signatureTag(subject.digest);
    const sig = await source.manifest(image, { kind: 'tag', tag: sigTag }).catch(() => undefined);
    if (sig) found.push({ d: { mediaType: sig.mediaType, digest: sig.digest, size: sig.body.length }, tag: sigTag });
    // A registry without the referrers API holds them in an index at the tag sha256-<hex> (cosign's
    // Sigstore bundles among them): that index travels under its tag, with what it lists.
    const listTag = referrersTag(subject.digest);
    const listed = await source.manifest(image, { kind: 'tag', tag: listTag }).catch(() => undefined);
    if (listed) {
      found.push({ d: { mediaType: listed.mediaType, digest: listed.digest, size: listed.body.length }, tag: listTag });
      for (const d of parseManifest(listed.body, listed.mediaType).manifests) {
        if (!found.some((f) => f.d.digest === d.digest)) found.push({ d, tag: undefined });
      }
    }
    for (const { d, tag } of found) {
      if (manifests.some((m) => m.digest === d.digest) && tag === undefined) continue;
      const m = manifests.find((x) => x.digest === d.digest) ?? (await source.manifest(image, { kind: 'digest', digest: d.digest }));
      if (!m) continue;
      if (!manifests.includes(m)) manifests.push(m);
      blobs.push(...parseManifest(m.body, m.mediaType).blobs.filter((b) => !isNonDistributable(b.mediaType)));
      entries.push(entry(m, tag ? `${repoName}:${tag}` : `${repoName}@${m.digest}`));
    }
  }
  return { name, image, manifests, blobs, entries };
}
