/** @module cli/bundle-export — `berth export`: images with their platforms, signatures and referrers written as an OCI image layout (a directory or one tar). */
import { readFile, stat } from 'node:fs/promises';
import { referrersTag, signatureTag } from '../cache/cosign.js';
import { formatImageReference, parseImageReference, type ImageReference } from '../oci/image-ref.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { isIndexType, isNonDistributable } from '../oci/mediatypes.js';
import { formatPlatform, selectManifests, type Platform } from '../oci/platform.js';
import { BlobMismatchError, REF_NAME, isTarPath, openLayoutReader, openLayoutWriter } from '../storage/oci-layout.js';
import type { ExportSource, FetchedManifest } from './bundle-sources.js';
import { formatBytes } from './progress.js';
import { counted, transferBar } from './transfer-bar.js';

export interface ExportOptions {
  readonly output: string;
  readonly platforms: readonly Platform[] | 'all';
  /** An earlier bundle, or a JSON state file listing the blobs a site holds. */
  readonly since?: string;
  readonly quiet: boolean;
}

export interface BundleIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly stderr: NodeJS.WritableStream;
  readonly tty: boolean;
  readonly now: () => number;
}

/** One image planned for the bundle: its manifests (in memory, small) and the blobs to stream. */
interface Planned {
  readonly name: string;
  readonly image: ImageReference;
  readonly manifests: FetchedManifest[];
  readonly blobs: Descriptor[];
  readonly entries: Descriptor[];
}

/** Exit status: 0 when every image went into the bundle whole, 1 naming each that did not. */
export async function exportBundle(source: ExportSource, images: readonly string[], opts: ExportOptions, io: BundleIo): Promise<number> {
  const held = opts.since === undefined ? new Set<string>() : await heldBy(opts.since);
  const failures: string[] = [];
  const plans: Planned[] = [];
  for (const text of images) {
    try {
      plans.push(await plan(source, parseImageReference(text), opts.platforms));
    } catch (err) {
      failures.push(`${text}: ${(err as Error).message}`);
    }
  }
  if (plans.length === 0) {
    for (const f of failures) io.err(`berth export: not exported: ${f}`);
    io.err(`berth export: no image to export; ${opts.output} was not written`);
    return 1;
  }
  // Each blob once, even when images share it; what the site holds already stays out.
  const blobs = new Map<string, { d: Descriptor; image: ImageReference }>();
  for (const p of plans) for (const d of p.blobs) if (!held.has(d.digest) && !blobs.has(d.digest)) blobs.set(d.digest, { d, image: p.image });
  const total = [...blobs.values()].reduce((n, b) => n + b.d.size, 0);
  const writer = await openLayoutWriter(opts.output);
  const bar = transferBar(total, { stream: io.stderr, tty: io.tty, quiet: opts.quiet, now: io.now });
  let written = 0;
  let skipped = 0;
  try {
    for (const p of plans) for (const m of p.manifests) await writer.addBytes(m.digest, m.body);
    // A directory takes two blobs at once (one's fsync while the next is read); a tar is one stream.
    const window = isTarPath(opts.output) ? 1 : 2;
    const inflight = new Set<Promise<void>>();
    let failure: Error | undefined;
    for (const { d, image } of blobs.values()) {
      if (failure) break;
      if (await writer.has(d.digest, d.size)) {
        skipped++;
        bar.add(d.size);
        continue;
      }
      const body = await source.blob(image, d.digest);
      if (!body) {
        failures.push(`${formatImageReference(image)}: blob ${d.digest} is not in ${source.name}`);
        continue;
      }
      const add: Promise<void> = writer
        .addBlob(d.digest, d.size, counted(body, bar, d.digest.slice(0, 19)))
        .then(
          () => {
            written++;
          },
          (err: Error) => {
            // A tar cannot drop what it has begun: the archive is given up whole.
            if (!(err instanceof BlobMismatchError) || isTarPath(opts.output)) failure ??= err;
            else failures.push(`${formatImageReference(image)}: ${err.message} in ${source.name}; not exported (run berth fsck there)`);
          },
        )
        .finally(() => inflight.delete(add));
      inflight.add(add);
      while (inflight.size >= window) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    if (failure) throw failure;
    await writer.finish(plans.flatMap((p) => p.entries));
  } catch (err) {
    bar.stop();
    await writer.abort();
    io.err(`berth export: ${(err as Error).message}${isTarPath(opts.output) ? `; ${opts.output} was not written` : ''}`);
    return 1;
  }
  bar.stop();
  const left =
    held.size > 0 ? `, ${[...new Set(plans.flatMap((p) => p.blobs.map((b) => b.digest)))].filter((d) => held.has(d)).length} left out (held by --since)` : '';
  io.out(
    `exported ${plans.length} image(s) to ${opts.output}: ${written} blob(s) written (${formatBytes(total)})${skipped ? `, ${skipped} already there` : ''}${left}`,
  );
  for (const f of failures) io.err(`berth export: not exported: ${f}`);
  return failures.length === 0 ? 0 : 1;
}

/** The name an image gets in index.json: as the user wrote it, its tag explicit (or `name@digest`). */
export function bundleName(image: ImageReference): string {
  return formatImageReference(image.digest ? { ...image, tag: undefined } : image);
}

async function plan(source: ExportSource, image: ImageReference, platforms: readonly Platform[] | 'all'): Promise<Planned> {
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

/**
 * Digests a site holds already: every blob of an earlier bundle (directory or tar), or the
 * `blobs` list of a JSON state file (`berth ls --json`).
 */
export async function heldBy(path: string): Promise<Set<string>> {
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new Error(`--since ${path} does not exist`);
  if (s.isFile() && path.toLowerCase().endsWith('.json')) {
    const doc = JSON.parse(await readFile(path, 'utf8')) as { blobs?: unknown };
    if (!Array.isArray(doc.blobs)) throw new Error(`--since ${path} has no "blobs" list (write one with berth ls --json)`);
    return new Set(doc.blobs.map((b) => (typeof b === 'string' ? b : String((b as { digest?: unknown }).digest))));
  }
  const held = new Set<string>();
  for await (const b of (await openLayoutReader(path)).blobs()) held.add(b.digest);
  return held;
}
