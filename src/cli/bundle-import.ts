/** @module cli/bundle-import — `berth import`: an OCI image layout (directory or tar) loaded into a stopped store, every blob verified, resumable, images pinned under their original names. */
import { stat } from 'node:fs/promises';
import { pino } from 'pino';
import type { BerthConfig } from '../config/types.js';
import { imageRouter } from '../assembly/operations.js';
import { manifestRow } from '../cache/referrers.js';
import { parseImageReference } from '../oci/image-ref.js';
import { parseManifest, MAX_MANIFEST_SIZE, type Descriptor } from '../oci/manifest.js';
import { isIndexType, isNonDistributable } from '../oci/mediatypes.js';
import { OciError } from '../oci/errors.js';
import { parseDigest } from '../oci/digest.js';
import type { Target, Upstream } from '../upstream/target.js';
import { BlobStore } from '../storage/blob-files.js';
import { readInUse } from '../storage/in-use.js';
import { openLocalIndex, type IndexPorts } from '../storage/local.js';
import { entryName, isTarPath, openLayoutReader, type LayoutReader } from '../storage/oci-layout.js';
import { RegistryClient } from '../upstream/client.js';
import { instanceId } from '../upstream/loop.js';
import type { BundleIo } from './bundle-export.js';
import { formatBytes } from './progress.js';
import { transferBar } from './transfer-bar.js';

/** Thrown for an image whose content is not all in the store after the blobs were loaded. */
class Incomplete extends Error {}

/** Exit status: 0 when every blob and image was imported, 1 naming what was refused or left out. */
export async function importBundle(config: BerthConfig, path: string, opts: { quiet: boolean }, io: BundleIo): Promise<number> {
  const root = config.storage.rootdirectory;
  const running = readInUse(root);
  if (running) {
    io.err(
      `berth import: berth (pid ${running.pid}) is serving the store at ${root}; stop it first (import --config writes the store directly), then start it again`,
    );
    return 1;
  }
  let reader: LayoutReader;
  try {
    reader = await openLayoutReader(path);
  } catch (err) {
    io.err(`berth import: ${(err as Error).message}`);
    return 1;
  }
  const blobs = new BlobStore(root);
  // Empties tmp/: what a killed import left half-written there goes (no berth is running to own it).
  await blobs.init();
  const index = openLocalIndex(root, io.now);
  const logger = pino({ level: 'silent' });
  const instance = await instanceId(root, false);
  const upstreams: Upstream[] = config.upstreams.map((u) => ({
    config: u,
    client: new RegistryClient(u, config.upstreamTimeouts, logger, io.now, undefined, instance),
  }));
  try {
    const loaded = await loadBlobs(reader, blobs, index, path, opts, io);
    const { imported, problems } = await recordImages(await reader.index(), imageRouter(upstreams), blobs, index);
    io.out(
      `imported ${loaded.stored} blob(s) (${formatBytes(loaded.bytes)}), ${loaded.present} already in the store; ${imported.length} image(s) pinned: ${imported.join(', ') || 'none'}`,
    );
    for (const r of loaded.refused) io.err(`berth import: refused ${r}`);
    for (const p of problems) io.err(`berth import: not imported: ${p}`);
    return loaded.refused.length + problems.length === 0 ? 0 : 1;
  } catch (err) {
    io.err(`berth import: ${(err as Error).message}`);
    return 1;
  } finally {
    index.close();
    await Promise.all(upstreams.map((u) => u.client.close()));
  }
}

/** Every blob of the layout into the store, verified as it is written; one already stored is not read. */
async function loadBlobs(reader: LayoutReader, blobs: BlobStore, index: IndexPorts, path: string, opts: { quiet: boolean }, io: BundleIo) {
  let total = 0;
  if (isTarPath(path) || !(await stat(path)).isDirectory()) total = (await stat(path)).size;
  else for await (const b of reader.blobs()) total += b.size;
  const bar = transferBar(total, { stream: io.stderr, tty: io.tty, quiet: opts.quiet, now: io.now });
  const result = { stored: 0, present: 0, bytes: 0, refused: [] as string[] };
  try {
    for await (const b of reader.blobs()) {
      // A blob file exists only once verified (rename after the check): present means whole.
      if ((await blobs.size(b.digest)) === b.size) {
        if (!(await index.blobIndex.get(b.digest))) await index.blobIndex.put(b.digest, b.size);
        result.present++;
        bar.add(b.size);
        continue;
      }
      const writer = await blobs.createWriter(parseDigest(b.digest).algorithm);
      try {
        for await (const chunk of b.read()) {
          await writer.write(chunk);
          bar.add(chunk.length, b.digest.slice(0, 19));
        }
        await writer.commit(b.digest, b.size);
      } catch (err) {
        await writer.abort().catch(() => undefined);
        if (!(err instanceof OciError)) throw err;
        result.refused.push(`blob ${b.digest}: ${err.message}; the bundle is damaged, export it again`);
        continue;
      }
      await index.blobIndex.put(b.digest, b.size);
      result.stored++;
      result.bytes += b.size;
    }
  } finally {
    bar.stop();
  }
  return result;
}

/** Each named entry of index.json recorded under its original name, tag set, top manifest pinned. */
async function recordImages(
  layout: { manifests: readonly Descriptor[] },
  route: (ref: ReturnType<typeof parseImageReference>) => Target,
  blobs: BlobStore,
  index: IndexPorts,
): Promise<{ imported: string[]; problems: string[] }> {
  const imported: string[] = [];
  const problems: string[] = [];
  for (const entry of layout.manifests) {
    const name = entryName(entry);
    try {
      if (!name)
        throw new Error(
          `index.json entry ${entry.digest} has no ${'org.opencontainers.image.ref.name'} annotation (export with a name, e.g. skopeo copy ... oci:DIR:harbor.xing.com/xing/app:v1)`,
        );
      const ref = parseImageReference(name);
      if (ref.digest && ref.digest !== entry.digest) throw new Error(`names ${ref.digest} but the entry is ${entry.digest}`);
      const target = route(ref);
      await recordManifest(target, entry.digest, entry.mediaType, blobs, index);
      if (ref.tag && !ref.digest) await index.repos.setTag(target.key, target.repository, ref.tag, entry.digest);
      await index.blobIndex.setPinned(entry.digest, true);
      imported.push(name);
    } catch (err) {
      problems.push(`${name ?? entry.digest}: ${(err as Error).message}`);
    }
  }
  return { imported, problems };
}

async function recordManifest(target: Target, digest: string, mediaType: string | undefined, blobs: BlobStore, index: IndexPorts): Promise<void> {
  const size = await blobs.size(digest);
  if (size === undefined) throw new Incomplete(`manifest ${digest} is neither in the bundle nor in the store`);
  if (size > MAX_MANIFEST_SIZE) throw new Error(`manifest ${digest} is ${size} bytes, more than ${MAX_MANIFEST_SIZE}`);
  const body = await blobs.readAll(digest);
  const parsed = parseManifest(body, mediaType);
  if (isIndexType(parsed.mediaType)) {
    // An export for some platforms carries only their manifests: the others are fetched when a node asks (and the link is up).
    let present = 0;
    for (const child of parsed.manifests) {
      if ((await blobs.size(child.digest)) === undefined) continue;
      await recordManifest(target, child.digest, child.mediaType, blobs, index);
      present++;
    }
    if (present === 0) throw new Incomplete(`index ${digest} has none of its manifests in the bundle or the store`);
  } else {
    const missing: string[] = [];
    for (const b of parsed.blobs) if (!isNonDistributable(b.mediaType) && (await blobs.size(b.digest)) === undefined) missing.push(b.digest);
    if (missing.length > 0) throw new Incomplete(`manifest ${digest} needs ${missing.join(', ')}, which neither the bundle nor the store holds`);
  }
  await index.repos.putManifest(target.key, target.repository, manifestRow(digest, body.length, parsed));
}
