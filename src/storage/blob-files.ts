/** @module storage/blob-files — the content-addressed blob files on disk: layout, verified atomic commits, reads. */
import { constants, createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { isDigest, parseDigest, type Algorithm } from '../oci/digest.js';
import { StoreLayout } from './layout.js';
import { digestInvalid, sizeInvalid } from '../oci/error-catalogue.js';
import { Leases, StoredBlob } from './leases.js';
import { BufferPool } from './send.js';
import type { ZeroCopy } from './zero-copy.js';
import { KeptStore } from './kept-ranges.js';
import { OpenFiles } from './open-files.js';
import { BlobWriter } from './blob-writer.js';
import type { BundleSource, FileDigests } from '../ports/file-digests.js';

export type { BundleSource, FileDigests, FileRegion } from '../ports/file-digests.js';
export type { BlobWriter } from './blob-writer.js';

/** The files under blobs/, tmp/ and uploads/; every path comes from storage/layout, which draws the whole layout. */
export class BlobStore {
  readonly root: string;
  readonly tmpDir: string;
  readonly uploadsDir: string;
  private readonly layout: StoreLayout;
  /** Readers against removal: see leases.ts. */
  private readonly leases = new Leases();
  /** Send buffers shared by every response from this store (stored blobs and fills alike). */
  readonly sendBuffers = new BufferPool();
  /** Descriptors of stored blobs kept between requests (storage/open-files). */
  private readonly files: OpenFiles;
  /** Bytes fetched for ranges of blobs not stored yet, kept for their fills (under partial/, kept across restarts). */
  readonly kept: KeptStore;

  /** `zeroCopy`: sendfile(2) for stored blobs sent to plain TCP sockets (storage/zero-copy); also given later by useZeroCopy. */
  constructor(
    root: string,
    private zeroCopy?: ZeroCopy,
    now: () => number = Date.now,
  ) {
    this.root = root;
    this.files = new OpenFiles(now);
    this.layout = new StoreLayout(root);
    this.tmpDir = this.layout.tmpDir;
    this.uploadsDir = this.layout.uploadsDir;
    this.kept = new KeptStore((digest) => this.layout.partial(digest), this.layout.partialDir);
  }

  /** `keepTemp`: a serving worker starting beside others, whose fills are in tmp/ (the primary emptied it before any started). */
  async init(keepTemp = false): Promise<{ removedTemp: number }> {
    await mkdir(this.layout.blobsDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(this.uploadsDir, { recursive: true });
    if (keepTemp) return { removedTemp: 0 };
    const leftovers = await readdir(this.tmpDir);
    // Leftover temp files come from a crash mid-write: never visible, safe to drop.
    await Promise.all(leftovers.map((f) => rm(join(this.tmpDir, f), { force: true, recursive: true })));
    return { removedTemp: leftovers.length };
  }

  /** From now on, blobs opened go by sendfile(2) where the socket allows (berth binds it after listening: koffi costs start-up time). */
  useZeroCopy(zeroCopy: ZeroCopy): void {
    this.zeroCopy = zeroCopy;
  }

  path(digest: string): string {
    return this.layout.blob(digest);
  }

  /** Size of a committed blob, or undefined when absent. */
  async size(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(digest))).size;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Opens a committed blob for reading, or undefined when it is absent. The lease is taken before
   * the first await and the descriptor is open when this resolves, so a blob found is a blob
   * readable: removal skips it until close(), and an unlinked file stays readable through the fd.
   */
  async open(digest: string): Promise<StoredBlob | undefined> {
    const path = this.path(digest);
    const { settled, release } = this.leases.acquire(digest);
    try {
      await settled;
      const got = await this.files.acquire(digest, path);
      if (!got) {
        release();
        return undefined;
      }
      const { file, reused } = got;
      return new StoredBlob(digest, file.size, file.fh, release, this.sendBuffers, this.zeroCopy, () => this.files.release(digest, file), reused);
    } catch (err) {
      release();
      throw err;
    }
  }

  /** The next reader of `digest` opens its file afresh (and so is not `reused`). */
  forgetOpen(digest: string): void {
    this.files.drop(digest);
  }

  /** Closes the descriptors kept between requests (those being read close when their readers finish). */
  closeFiles(): void {
    this.files.close();
  }

  /**
   * Keeps `digest` from being removed until release(), for steps that check for a blob and then
   * record it (a removal under way is waited out first, so the check sees its outcome).
   */
  async hold(digest: string): Promise<() => void> {
    const { settled, release } = this.leases.acquire(digest);
    await settled;
    return release;
  }

  /** Whether a reader has the blob open (or held) right now. */
  isHeld(digest: string): boolean {
    return this.leases.isHeld(digest);
  }

  heldDigests(): string[] {
    return this.leases.heldDigests();
  }

  async readAll(digest: string): Promise<Buffer> {
    const blob = await this.open(digest);
    if (!blob) throw Object.assign(new Error(`blob ${digest} is not stored`), { code: 'ENOENT' });
    try {
      return await blob.readAll();
    } finally {
      await blob.close();
    }
  }

  /**
   * Stores a blob of a bundle: a whole file is copied by the kernel into tmp/ (a reflink where it
   * can), a stream written there as it comes (never past `size`), each then hashed on the hasher's
   * threads; a region of a file (a tar's entry) is copied and hashed at once on one, read once. What
   * is published is what was verified. A mismatch throws DIGEST_INVALID or SIZE_INVALID, leaving nothing.
   */
  async copyIn(source: BundleSource, digest: string, size: number, hasher: FileDigests, onChunk?: (n: number) => void): Promise<void> {
    const tooLong = (n: number) => sizeInvalid(`content of ${digest} is ${n} bytes, expected ${size}`);
    if (typeof source === 'string') {
      const found = (await stat(source)).size;
      if (found !== size) throw tooLong(found);
    }
    const algorithm = parseDigest(digest).algorithm;
    const tempPath = this.newTempPath();
    try {
      let seen: { digest: string; size: number };
      if (typeof source === 'string') {
        await copyFile(source, tempPath, constants.COPYFILE_FICLONE);
        seen = await hasher.hash(tempPath, algorithm);
      } else if ('file' in source) {
        seen = await hasher.copy(source.file, { offset: source.offset, length: size }, tempPath, 0, algorithm);
        onChunk?.(seen.size);
      } else {
        await writeAll(tempPath, source, size, tooLong, onChunk);
        seen = await hasher.hash(tempPath, algorithm);
      }
      if (seen.size !== size) throw tooLong(seen.size);
      if (seen.digest !== digest) throw digestInvalid(`content does not match digest ${digest} (computed ${seen.digest})`);
      const fh = await open(tempPath, 'r+');
      await fh.sync().finally(() => fh.close());
      await this.publish(tempPath, digest);
    } catch (err) {
      await rm(tempPath, { force: true });
      throw err;
    }
  }

  /** Renames a synced, verified temp file into place and syncs its directory: a crash leaves nothing or the whole blob. */
  async publish(tempPath: string, digest: string): Promise<void> {
    const target = this.path(digest);
    const dir = join(target, '..');
    await mkdir(dir, { recursive: true });
    await rename(tempPath, target);
    // A blob stored again (it was deleted behind berth's back): the next read opens the new file.
    this.files.drop(digest);
    await syncDir(dir);
  }

  /** Starts a verified write; nothing becomes visible until commit() checks digest and size. */
  async createWriter(algorithm: Algorithm = 'sha256', tempPath = this.newTempPath()): Promise<BlobWriter> {
    const fh = await open(tempPath, 'w+');
    return new BlobWriter((temp, digest) => this.publish(temp, digest), fh, tempPath, algorithm);
  }

  /**
   * Reopens a partly written temp file (a client upload) for appending: the bytes already there
   * are hashed again, once, so the digest check at commit covers the whole file.
   */
  async resumeWriter(tempPath: string, algorithm: Algorithm = 'sha256'): Promise<BlobWriter> {
    const fh = await open(tempPath, 'r+');
    const writer = new BlobWriter((temp, digest) => this.publish(temp, digest), fh, tempPath, algorithm);
    try {
      for await (const chunk of createReadStream(tempPath, { highWaterMark: 1024 * 1024 })) writer.hashOnly(chunk as Buffer);
    } catch (err) {
      await writer.release();
      throw err;
    }
    return writer;
  }

  /** Stores bytes held in memory (a manifest) as a verified blob; on any failure (a full disk) the temp file goes. */
  async put(digest: string, body: Uint8Array): Promise<void> {
    const writer = await this.createWriter(parseDigest(digest).algorithm);
    try {
      await writer.write(body);
      await writer.commit(digest, body.length);
    } catch (err) {
      await writer.abort().catch(() => undefined);
      throw err;
    }
  }

  /** A fresh temp file name, known before the file exists so readers can be pointed at it. */
  newTempPath(): string {
    return this.layout.temp(randomUUID());
  }

  async delete(digest: string): Promise<void> {
    // Closed now unless a reader still sends from it, so the space is freed with the last reader.
    this.files.drop(digest);
    await rm(this.path(digest), { force: true });
  }

  /**
   * Eviction's delete: leaves a blob a reader holds alone (false), else runs `forget` (the
   * metadata side) and deletes the file, while readers arriving meanwhile wait and find it gone.
   */
  evict(digest: string, forget: () => void | Promise<void>): Promise<boolean> {
    return this.leases.remove(digest, async () => {
      await forget();
      await this.delete(digest);
    });
  }

  /** Removes a blob's kept ranges unless a reader holds the digest (as evict does for stored blobs): false when left alone. */
  evictKept(digest: string): Promise<boolean> {
    return this.leases.remove(digest, () => this.kept.discard(digest));
  }

  /** Lists every committed blob digest (used by fsck and start-up reconciliation). */
  async *list(): AsyncGenerator<string> {
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const base = this.layout.blobDir(algorithm);
      for (const prefix of await readdirOrEmpty(base)) {
        for (const encoded of await readdirOrEmpty(join(base, prefix))) {
          // Only names that parse as digests are content; anything else was not written by berth.
          const digest = `${algorithm}:${encoded}`;
          if (encoded.startsWith(prefix) && isDigest(digest)) yield digest;
        }
      }
    }
  }
}

/** Writes a stream into a new file, refusing it once it runs past `size`. */
async function writeAll(
  path: string,
  body: AsyncIterable<Uint8Array>,
  size: number,
  tooLong: (n: number) => Error,
  onChunk?: (n: number) => void,
): Promise<void> {
  const fh = await open(path, 'w');
  try {
    let at = 0;
    for await (const chunk of body) {
      if (at + chunk.length > size) throw tooLong(at + chunk.length);
      for (let done = 0; done < chunk.length;) done += (await fh.write(chunk, done, chunk.length - done, at + done)).bytesWritten;
      at += chunk.length;
      onChunk?.(chunk.length);
    }
  } finally {
    await fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

export function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'ENOENT';
}
