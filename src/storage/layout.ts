/** @module storage/layout — every path of the store, built in one place; this comment is the whole on-disk layout. */
import { join } from 'node:path';
import { parseDigest } from '../oci/digest.js';

/**
 * Layout under `storage.filesystem.rootdirectory`:
 *
 *   <root>/
 *     metadata.db        SQLite (WAL): blob index, repository links, manifests, tags
 *     metadata.db-wal    SQLite's write-ahead log (and -shm), beside each database
 *     push.db            SQLite (WAL, synchronous=FULL): replication queue, held tags, upload rows
 *     hub.db             SQLite (WAL), on a fleet hub only: pre-heat jobs and their parts, sites' reports
 *     berth.lock         held by a running `berth serve`: its pid and the blobs it has open
 *     berth.lock.w<N>    the same, one per serving worker (http.workers above 1)
 *     reserve            zeros held back for metadata writes on a full disk (storage.reserve)
 *     blobs/
 *       <algorithm>/<first two hex>/<hex>   committed content, immutable, named by its digest
 *     tmp/<uuid>         content being written (fills); emptied on start-up
 *     tmp/reserve        the reserve while it is being written, renamed into place when whole
 *     uploads/<uuid>     client uploads in progress; kept across restarts
 *     partial/<algorithm>/<hex>          bytes of a blob fetched for ranges, at their offsets (sparse)
 *     partial/<algorithm>/<hex>.ranges   JSON: the blob's size and the [start, end) spans held there;
 *                                        kept across restarts, removed once the blob is stored or fails its digest
 *
 * Only parsed digests and generated ids reach these functions, so no request can name a path
 * outside the root. Each database records its schema version (PRAGMA user_version).
 */
export class StoreLayout {
  constructor(readonly root: string) {}

  get metadataDb(): string {
    return join(this.root, 'metadata.db');
  }

  get pushDb(): string {
    return join(this.root, 'push.db');
  }

  get hubDb(): string {
    return join(this.root, 'hub.db');
  }

  get lockFile(): string {
    return join(this.root, 'berth.lock');
  }

  /** The in-use record of serving worker `slot`. */
  workerLockFile(slot: number): string {
    return join(this.root, `berth.lock.w${slot}`);
  }

  /** Whether a file name in the root is an in-use record (berth.lock or a worker's). */
  static isLockName(name: string): boolean {
    return /^berth\.lock(?:\.w\d+)?$/.test(name);
  }

  get reserve(): string {
    return join(this.root, 'reserve');
  }

  get reserveTemp(): string {
    return join(this.root, 'tmp', 'reserve');
  }

  get blobsDir(): string {
    return join(this.root, 'blobs');
  }

  /** Directory of one algorithm's blobs, or of one two-hex prefix within it. */
  blobDir(algorithm: string, prefix?: string): string {
    return prefix === undefined ? join(this.root, 'blobs', algorithm) : join(this.root, 'blobs', algorithm, prefix);
  }

  blob(digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.root, 'blobs', algorithm, encoded.slice(0, 2), encoded);
  }

  get tmpDir(): string {
    return join(this.root, 'tmp');
  }

  temp(name: string): string {
    return join(this.root, 'tmp', name);
  }

  get uploadsDir(): string {
    // Not under tmp/, which start-up empties: an upload may be resumed after a restart.
    return join(this.root, 'uploads');
  }

  get partialDir(): string {
    return join(this.root, 'partial');
  }

  /** A blob's kept ranges (storage/kept-ranges): the sparse file of their bytes, and beside it `.ranges`, the map of what it holds. */
  partial(digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.partialDir, algorithm, encoded);
  }

  upload(id: string): string {
    return join(this.root, 'uploads', id);
  }
}
