/** @module storage/check — reconciling metadata with the files on disk, and re-verifying every blob (fsck). */
import { createReadStream } from 'node:fs';
import { Digester, parseDigest } from '../oci/digest.js';
import type { BlobStore } from './blob-files.js';
import type { BlobIndex } from '../ports/blob-index.js';

export interface ReconcileResult {
  /** Files on disk that metadata did not know (a crash between rename and record). */
  readonly adopted: number;
  /** Metadata rows whose file is gone. */
  readonly forgotten: number;
}

/**
 * Makes the index agree with this replica's files: the files are the truth, each verified before
 * its rename. Only what this replica holds is compared, so a shared index never loses a blob
 * another replica has on its own disk. Safe beside serving (berth runs it in the background,
 * docs/design.md §4): every change is made with the blob held and its file looked at again, so
 * a fill or an eviction under way meanwhile is not undone. `signal` stops it between blobs.
 */
export async function reconcile(blobs: BlobStore, index: BlobIndex, signal?: AbortSignal): Promise<ReconcileResult> {
  // One query for what this replica holds instead of one per file: most of start-up with a full store.
  // Each file found is struck off; what is left are rows without a file (one set, not two: memory at 100k blobs).
  const own = new Set(await index.ownDigests());
  let adopted = 0;
  for await (const digest of blobs.list()) {
    if (signal?.aborted) break;
    if (own.delete(digest)) continue;
    const release = await blobs.hold(digest);
    try {
      if (await index.get(digest)) continue;
      const size = await blobs.size(digest);
      if (size !== undefined) {
        await index.put(digest, size);
        adopted++;
      }
    } finally {
      release();
    }
  }
  let forgotten = 0;
  for (const digest of own) {
    if (signal?.aborted) break;
    const release = await blobs.hold(digest);
    try {
      // A fill may have stored it since the listing.
      if ((await blobs.size(digest)) !== undefined) continue;
      await index.forget(digest);
      forgotten++;
    } finally {
      release();
    }
  }
  return { adopted, forgotten };
}

export interface FsckResult {
  readonly checked: number;
  readonly bytes: number;
  readonly corrupt: string[];
  readonly repaired: boolean;
}

/** Re-hashes every stored blob; with repair, removes those whose bytes do not match their name. */
export async function fsck(
  blobs: BlobStore,
  index: BlobIndex,
  opts: { repair: boolean; onProgress?: (digest: string, ok: boolean) => void },
): Promise<FsckResult> {
  let checked = 0;
  let bytes = 0;
  const corrupt: string[] = [];
  for await (const digest of blobs.list()) {
    let ok = false;
    try {
      const digester = new Digester(parseDigest(digest).algorithm);
      for await (const chunk of createReadStream(blobs.path(digest), { highWaterMark: 1024 * 1024 })) digester.update(chunk as Buffer);
      bytes += digester.bytes;
      ok = digester.digest() === digest;
    } catch {
      ok = false;
    }
    checked++;
    opts.onProgress?.(digest, ok);
    if (ok) continue;
    corrupt.push(digest);
    if (opts.repair) {
      await index.forget(digest);
      await blobs.delete(digest);
    }
  }
  if (opts.repair) await reconcile(blobs, index);
  return { checked, bytes, corrupt, repaired: opts.repair };
}
