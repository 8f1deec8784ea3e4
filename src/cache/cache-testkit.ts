/** @module cache/cache-testkit — a real store in a temp dir with helpers that write images into it, for the cache's tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '../oci/digest.js';
import { OCI_INDEX, OCI_MANIFEST } from '../oci/mediatypes.js';
import { BlobStore } from '../storage/blob-files.js';
import { MetadataStore } from '../storage/metadata.js';
import { LocalBlobIndex, LocalRepositoryIndex } from '../storage/local-index.js';

export interface Stored {
  readonly digest: string;
  readonly size: number;
}

export async function testStore(now: () => number = () => 1_700_000_000_000) {
  const dir = await mkdtemp(join(tmpdir(), 'berth-cache-'));
  const blobs = new BlobStore(dir);
  await blobs.init();
  const metadata = new MetadataStore(dir, now);
  // The ports the cache talks to, over the same database the helpers write.
  const index = new LocalBlobIndex(metadata);
  const repos = new LocalRepositoryIndex(metadata);
  const sizes = new Map<string, number>();

  /** Stores bytes as a verified blob. */
  const put = async (data: Buffer | string): Promise<Stored> => {
    const buf = Buffer.from(data);
    const digest = digestOf(buf);
    const w = await blobs.createWriter();
    await w.write(buf);
    await w.commit(digest, buf.length);
    metadata.putBlob(digest, buf.length);
    sizes.set(digest, buf.length);
    return { digest, size: buf.length };
  };

  /** Stores an image manifest with its config under `repo` of the local registry (upstream ""). */
  const manifest = async (repo: string, config: object, layers: readonly Stored[]): Promise<Stored> => {
    const c = await put(JSON.stringify(config));
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
    });
    const m = await put(body);
    metadata.putManifest('', repo, { digest: m.digest, mediaType: OCI_MANIFEST, size: m.size, children: [c.digest, ...layers.map((l) => l.digest)] });
    return m;
  };

  /** Stores an index over `entries` (each with its platform) under `repo`. */
  const imageIndex = async (repo: string, entries: ReadonlyArray<Stored & { platform: object }>): Promise<Stored> => {
    const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries.map((e) => ({ mediaType: OCI_MANIFEST, ...e })) });
    const i = await put(body);
    metadata.putManifest('', repo, { digest: i.digest, mediaType: OCI_INDEX, size: i.size, children: entries.map((e) => e.digest) });
    return i;
  };

  const remove = async () => {
    metadata.close();
    await rm(dir, { recursive: true, force: true });
  };
  return { dir, blobs, metadata, ports: { index, repos }, sizes, put, manifest, index: imageIndex, remove };
}
