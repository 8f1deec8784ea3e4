/** @module cli/bundle-import — `berth import`: an OCI image layout (directory or tar) loaded into a stopped store, every blob verified, resumable, images pinned under their original names. */
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { pino } from 'pino';
import type { BerthConfig } from '../config/types.js';
import { imageRouter } from '../assembly/operations.js';
import { holdsBlob, recordImages, storeCopy, type LoadPorts } from '../cache/bundle-load.js';
import { OciError } from '../oci/errors.js';
import type { Upstream } from '../upstream/target.js';
import { BlobStore, type FileRegion } from '../storage/blob-files.js';
import { readInUse } from '../storage/in-use.js';
import { openLocalIndex } from '../storage/local.js';
import { isTarPath } from '../storage/oci-layout.js';
import { openLayoutReader, type LayoutReader } from '../storage/oci-layout-reader.js';
import { RegistryClient } from '../upstream/client.js';
import { instanceId } from '../upstream/loop.js';
import type { BundleIo } from './bundle-export.js';
import { formatBytes } from './progress.js';
import { FileHasher } from '../util/file-hasher.js';
import { transferBar } from './transfer-bar.js';

export interface ImportOptions {
  readonly quiet: boolean;
  /** The name of the one index.json entry without a name (skopeo's `oci:DIR` without `:NAME`). */
  readonly name?: string;
}

/** Where blobs go: the store itself, or a running berth's admin API. */
export interface BlobSink {
  /** Whether the blob is there whole already (then it is not read). */
  has(digest: string, size: number): Promise<boolean>;
  /** Stores it, verified; an OciError (or BundleRefusal) refuses this blob only. */
  put(digest: string, size: number, body: AsyncIterable<Uint8Array>, onChunk: (n: number) => void): Promise<void>;
  /** Stores a blob that is a regular file (a directory layout), verified, when the sink can take it whole. */
  putFile?(digest: string, size: number, file: string): Promise<void>;
  /** Stores a blob that is a region of a file (a tar on disk), verified, when the sink can copy it from there. */
  putRegion?(digest: string, size: number, region: FileRegion): Promise<void>;
  /** Blobs it stores at once. */
  readonly window?: number;
}

/** A blob the receiving side refused (its digest or size is wrong); the import goes on with the rest. */
export class BundleRefusal extends Error {}

export interface Loaded {
  stored: number;
  present: number;
  bytes: number;
  refused: string[];
}

/** Exit status: 0 when every blob and image was imported, 1 naming what was refused or left out. */
export async function importBundle(config: BerthConfig, path: string, opts: ImportOptions, io: BundleIo): Promise<number> {
  const root = config.storage.rootdirectory;
  const running = readInUse(root);
  if (running) {
    io.err(`berth import: berth (pid ${running.pid}) is serving the store at ${root}; stop it first, or import through it with berth import --server URL`);
    return 1;
  }
  const reader = await openBundle(path, io);
  if (!reader) return 1;
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
  const ports: LoadPorts = { blobs, blobIndex: index.blobIndex, repos: index.repos };
  const hasher = new FileHasher();
  const refusing = async (store: () => Promise<unknown>) => {
    try {
      await store();
    } catch (err) {
      throw err instanceof OciError ? new BundleRefusal(err.message) : err;
    }
  };
  const sink: BlobSink = {
    has: (digest, size) => holdsBlob(ports, digest, size),
    put: (digest, size, body, onChunk) => refusing(() => storeCopy(ports, digest, size, body, hasher, onChunk)),
    putFile: (digest, size, file) => refusing(() => storeCopy(ports, digest, size, file, hasher)),
    putRegion: (digest, size, region) => refusing(() => storeCopy(ports, digest, size, region, hasher)),
    // Copies are hashed on the hasher's threads: one more in flight than it has cores keeps them busy while one syncs.
    window: Math.max(WINDOW, Math.min(4, availableParallelism()) + 1),
  };
  try {
    const loaded = await loadBlobs(reader, sink, path, opts, io);
    const { imported, problems } = await recordImages((await reader.index()).manifests, imageRouter(upstreams), ports, opts.name);
    await index.bundles.record({ source: path, images: imported, ...counts(loaded), problems });
    return report(loaded, imported, problems, io);
  } catch (err) {
    io.err(`berth import: ${(err as Error).message}`);
    return 1;
  } finally {
    index.close();
    await hasher.close();
    await Promise.all(upstreams.map((u) => u.client.close()));
  }
}

/** A load's blob counts as the record of imports keeps them. */
export function counts(loaded: Loaded): { blobsStored: number; blobsSkipped: number; blobsRefused: number } {
  return { blobsStored: loaded.stored, blobsSkipped: loaded.present, blobsRefused: loaded.refused.length };
}

/** The bundle's reader, or undefined after saying why it cannot be read. */
export async function openBundle(path: string, io: BundleIo): Promise<LayoutReader | undefined> {
  try {
    return await openLayoutReader(path);
  } catch (err) {
    io.err(`berth import: ${(err as Error).message}`);
    return undefined;
  }
}

/** The closing lines of an import, either path; the exit status. */
export function report(loaded: Loaded, imported: readonly string[], problems: readonly string[], io: BundleIo): number {
  io.out(
    `imported ${loaded.stored} blob(s) (${formatBytes(loaded.bytes)}), ${loaded.present} already in the store; ${imported.length} image(s) pinned: ${imported.join(', ') || 'none'}`,
  );
  for (const r of loaded.refused) io.err(`berth import: refused ${r}`);
  for (const p of problems) io.err(`berth import: not imported: ${p}`);
  return loaded.refused.length + problems.length === 0 ? 0 : 1;
}

/** Blobs stored at once. */
const WINDOW = 2;

/** Every blob of the layout into the sink, verified as it is written; one already there is not read. */
export async function loadBlobs(reader: LayoutReader, sink: BlobSink, path: string, opts: { quiet: boolean }, io: BundleIo): Promise<Loaded> {
  let total = 0;
  if (isTarPath(path) || !(await stat(path)).isDirectory()) total = (await stat(path)).size;
  else for await (const b of reader.blobs()) total += b.size;
  const bar = transferBar(total, { stream: io.stderr, tty: io.tty, quiet: opts.quiet, now: io.now });
  const result: Loaded = { stored: 0, present: 0, bytes: 0, refused: [] };
  // Two blobs in flight: one blob's fsync (or the server's) runs while the next is read and hashed.
  const inflight = new Set<Promise<void>>();
  let failure: Error | undefined;
  try {
    for await (const b of reader.blobs()) {
      if (failure !== undefined) break;
      if (await sink.has(b.digest, b.size)) {
        result.present++;
        bar.add(b.size);
        continue;
      }
      const label = b.digest.slice(0, 19);
      const stored =
        b.file !== undefined && sink.putFile
          ? sink.putFile(b.digest, b.size, b.file).then(() => bar.add(b.size, label))
          : b.region !== undefined && sink.putRegion
            ? sink.putRegion(b.digest, b.size, b.region).then(() => bar.add(b.size, label))
            : sink.put(b.digest, b.size, b.read(), (n) => bar.add(n, label));
      const put: Promise<void> = stored
        .then(
          () => {
            result.stored++;
            result.bytes += b.size;
          },
          (err: unknown) => {
            if (err instanceof BundleRefusal) result.refused.push(`blob ${b.digest}: ${err.message}; the bundle is damaged, export it again`);
            else failure ??= err instanceof Error ? err : new Error(String(err));
          },
        )
        .finally(() => inflight.delete(put));
      inflight.add(put);
      // A piped tar's next entry comes once this one is read; a directory's blobs, and a tar file's regions, stand alone.
      while (inflight.size >= (sink.window ?? WINDOW)) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  } finally {
    bar.stop();
  }
  if (failure !== undefined) throw failure;
  return result;
}
