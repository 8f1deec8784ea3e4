/** @module storage/oci-layout — OCI image layouts written as a directory, or as one tar streamed to a client, and what reading and writing them shares (names, paths, index.json): the bundles that carry images to sites without a link. */
import { constants } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { Digester, isDigest, parseDigest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { OCI_INDEX } from '../oci/mediatypes.js';
import type { FileDigests } from './blob-files.js';

/** The annotation that names an image in a layout's index.json (the image's original full name here). */
export const REF_NAME = 'org.opencontainers.image.ref.name';
/** containerd's export names the image here and puts only the tag in REF_NAME; read as a fallback. */
export const CONTAINERD_NAME = 'io.containerd.image.name';
/** index.json is small; a bigger one is not a layout this reads. */
export const MAX_INDEX_BYTES = 4 * 1024 * 1024;
const LAYOUT_FILE = JSON.stringify({ imageLayoutVersion: '1.0.0' });
/** Read and write in large pieces: a bundle moves gigabytes. */
export const CHUNK = 1024 * 1024;

export interface LayoutIndex {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly manifests: readonly Descriptor[];
}

/** Thrown when bytes do not match the digest (or size) they are filed under. */
export class BlobMismatchError extends Error {
  constructor(
    readonly digest: string,
    why: string,
  ) {
    super(`blob ${digest} ${why}`);
    this.name = 'BlobMismatchError';
  }
}

/** A path ending in `.tar` is one tar file; anything else a directory. */
export function isTarPath(path: string): boolean {
  return path.toLowerCase().endsWith('.tar');
}

/** The path of a blob inside a layout, from a parsed digest only. */
export function blobPath(digest: string): string {
  const { algorithm, encoded } = parseDigest(digest);
  return `blobs/${algorithm}/${encoded}`;
}

/** Passes chunks through while hashing them; throws BlobMismatchError at the end when digest or size differ. */
export async function* verified(digest: string, size: number, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const digester = new Digester(parseDigest(digest).algorithm);
  for await (const chunk of source) {
    digester.update(chunk);
    if (digester.bytes > size) throw new BlobMismatchError(digest, `is longer than its ${size} bytes`);
    yield chunk;
  }
  if (digester.bytes !== size) throw new BlobMismatchError(digest, `is ${digester.bytes} bytes, expected ${size}`);
  const actual = digester.digest();
  if (actual !== digest) throw new BlobMismatchError(digest, `does not match its digest (computed ${actual})`);
}

/** Passes chunks through, refusing a body longer or shorter than `size` (its digest is checked elsewhere). */
async function* bounded(digest: string, size: number, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const chunk of source) {
    seen += chunk.length;
    if (seen > size) throw new BlobMismatchError(digest, `is longer than its ${size} bytes`);
    yield chunk;
  }
  if (seen !== size) throw new BlobMismatchError(digest, `is ${seen} bytes, expected ${size}`);
}

/** Parses index.json text: a schema 2 index whose entries carry valid digests and sizes. */
export function parseLayoutIndex(text: string): LayoutIndex {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error('index.json is not valid JSON');
  }
  const d = doc as { schemaVersion?: unknown; manifests?: unknown; mediaType?: unknown };
  if (typeof doc !== 'object' || doc === null || d.schemaVersion !== 2 || !Array.isArray(d.manifests)) {
    throw new Error('index.json is not an OCI image index (schemaVersion 2 with a "manifests" array)');
  }
  for (const [i, m] of (d.manifests as Array<Partial<Descriptor>>).entries()) {
    if (typeof m?.digest !== 'string' || !isDigest(m.digest) || typeof m.size !== 'number' || !Number.isSafeInteger(m.size) || m.size < 0) {
      throw new Error(`index.json manifests[${i}] has no valid digest and size`);
    }
  }
  return { schemaVersion: 2, ...(typeof d.mediaType === 'string' ? { mediaType: d.mediaType } : {}), manifests: d.manifests as Descriptor[] };
}

/** The name an index entry carries: the full image name, else containerd's. */
export function entryName(d: Descriptor): string | undefined {
  return d.annotations?.[REF_NAME] ?? d.annotations?.[CONTAINERD_NAME];
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface LayoutWriter {
  /** Whether the layout already holds the blob whole (a directory export run again), so it need not be read. */
  has(digest: string, size: number): Promise<boolean>;
  /** Streams one blob in, verified as it passes; a mismatch throws BlobMismatchError and leaves nothing of it. */
  addBlob(digest: string, size: number, body: AsyncIterable<Uint8Array>): Promise<void>;
  /** Adds small content (a manifest) held in memory. */
  addBytes(digest: string, body: Uint8Array): Promise<void>;
  /** Adds a blob that is a whole regular file, verified (a directory layout given a hasher; else absent). */
  addFile?(digest: string, size: number, file: string): Promise<void>;
  /**
   * Streams a blob in whose digest is worked out elsewhere meanwhile (`hashed`: its source file on a
   * hasher's thread); a mismatch throws BlobMismatchError once both are done (a tar; else absent).
   */
  addHashed?(digest: string, size: number, body: AsyncIterable<Uint8Array>, hashed: Promise<{ digest: string; size: number }>): Promise<void>;
  /** Writes index.json with these entries (a directory keeps its other entries) and completes the layout. */
  finish(entries: readonly Descriptor[]): Promise<void>;
  /** Gives up: a tar in progress is removed; a directory keeps its whole blobs for the next run. */
  abort(): Promise<void>;
}

/** A directory layout; `hasher`: it then copies whole files (addFile) and hashes them on the hasher's threads. */
export function openDirLayoutWriter(path: string, hasher?: FileDigests): Promise<LayoutWriter> {
  return DirLayoutWriter.open(path, hasher);
}

/**
 * A tar layout written straight into `out` (an HTTP response): entries wait for `out` to drain,
 * so a slow reader holds the blobs back instead of memory filling. finish() ends `out`; abort()
 * destroys it (the reader sees a truncated archive, never a complete-looking one).
 */
export async function openTarStreamWriter(out: NodeJS.WritableStream & { destroy(err?: Error): void }): Promise<LayoutWriter> {
  return TarLayoutWriter.open(out, {
    commit: async () => undefined,
    discard: async () => out.destroy(new Error('bundle aborted')),
  });
}

/** An index.json merging `entries` over `kept`: an entry with the same name (or the same unnamed digest) is replaced. */
export function mergeIndex(kept: readonly Descriptor[], entries: readonly Descriptor[]): LayoutIndex {
  const key = (d: Descriptor) => entryName(d) ?? `@${d.digest}`;
  const replaced = new Set(entries.map(key));
  return { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...kept.filter((d) => !replaced.has(key(d))), ...entries] };
}

class DirLayoutWriter implements LayoutWriter {
  readonly addFile?: (digest: string, size: number, file: string) => Promise<void>;

  private constructor(
    private readonly dir: string,
    hasher?: FileDigests,
  ) {
    if (hasher) this.addFile = (digest, size, file) => this.copyFile(digest, size, file, hasher);
  }

  static async open(dir: string, hasher?: FileDigests): Promise<DirLayoutWriter> {
    await mkdir(join(dir, 'blobs'), { recursive: true });
    await writeFile(join(dir, 'oci-layout'), LAYOUT_FILE);
    return new DirLayoutWriter(dir, hasher);
  }

  /** The kernel copies the file (a reflink where it can); the copy is hashed, then synced and renamed, as addBlob does. */
  private async copyFile(digest: string, size: number, file: string, hasher: FileDigests): Promise<void> {
    const target = join(this.dir, blobPath(digest));
    await mkdir(join(target, '..'), { recursive: true });
    await landing(`${target}.partial`, target, async (temp) => {
      await copyFile(file, temp, constants.COPYFILE_FICLONE);
      const seen = await hasher.hash(temp, parseDigest(digest).algorithm);
      if (seen.size !== size) throw new BlobMismatchError(digest, `is ${seen.size} bytes, expected ${size}`);
      if (seen.digest !== digest) throw new BlobMismatchError(digest, `does not match its digest (computed ${seen.digest})`);
      const fh = await open(temp, 'r+');
      await fh.sync().finally(() => fh.close());
    });
  }

  async has(digest: string, size: number): Promise<boolean> {
    const s = await stat(join(this.dir, blobPath(digest))).catch(() => undefined);
    return s?.isFile() === true && s.size === size;
  }

  async addBlob(digest: string, size: number, body: AsyncIterable<Uint8Array>): Promise<void> {
    const target = join(this.dir, blobPath(digest));
    await mkdir(join(target, '..'), { recursive: true });
    // Written beside its final name and renamed when verified: a killed export leaves no partial blob under a digest.
    await landing(`${target}.partial`, target, async (temp) => {
      const fh = await open(temp, 'w');
      try {
        // Each chunk is written while the next is read and hashed: disk and SHA-256 overlap.
        let pending: Promise<unknown> = Promise.resolve();
        let at = 0;
        for await (const chunk of verified(digest, size, body)) {
          await pending;
          pending = writeAt(fh, chunk, at);
          // Awaited on the next turn; a failed read meanwhile must not leave it unhandled.
          pending.catch(() => undefined);
          at += chunk.length;
        }
        await pending;
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
  }

  addBytes(digest: string, body: Uint8Array): Promise<void> {
    return this.addBlob(digest, body.length, single(body));
  }

  async finish(entries: readonly Descriptor[]): Promise<void> {
    const file = join(this.dir, 'index.json');
    const text = await readFile(file, 'utf8').catch(() => undefined);
    const kept = text === undefined ? [] : parseLayoutIndex(text).manifests;
    const temp = `${file}.partial`;
    await writeFile(temp, `${JSON.stringify(mergeIndex(kept, entries), null, 2)}\n`);
    await rename(temp, file);
  }

  async abort(): Promise<void> {}
}

/** Writes `temp` (synced by `write`), then renames it to `target`; on a failure `temp` goes, so nothing partial is ever under a digest. */
async function landing(temp: string, target: string, write: (temp: string) => Promise<void>): Promise<void> {
  try {
    await write(temp);
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** What becomes of a tar's destination once it is complete, or given up. */
interface TarEnds {
  commit(): Promise<void>;
  discard(): Promise<void>;
}

class TarLayoutWriter implements LayoutWriter {
  private readonly written = new Set<string>();
  private broken: Error | undefined;

  private constructor(
    private readonly pack: tar.Pack,
    private readonly done: Promise<void>,
    private readonly ends: TarEnds,
  ) {}

  static async open(out: NodeJS.WritableStream, ends: TarEnds): Promise<TarLayoutWriter> {
    const pack = tar.pack();
    const done = pipeline(pack, out);
    const w = new TarLayoutWriter(pack, done, ends);
    // A destination gone (a client hung up) stops the writer at its next chunk, not after every blob was read for nothing.
    done.catch((err: Error) => {
      w.broken = err;
    });
    await w.entry('oci-layout', single(Buffer.from(LAYOUT_FILE)), Buffer.byteLength(LAYOUT_FILE));
    return w;
  }

  async has(digest: string): Promise<boolean> {
    return this.written.has(digest);
  }

  async addBlob(digest: string, size: number, body: AsyncIterable<Uint8Array>): Promise<void> {
    if (this.written.has(digest)) return;
    // Bytes in a tar cannot be taken back: a mismatch found at the end spoils the archive (the caller aborts it).
    await this.entry(blobPath(digest), verified(digest, size, body), size);
    this.written.add(digest);
  }

  addBytes(digest: string, body: Uint8Array): Promise<void> {
    return this.addBlob(digest, body.length, single(body));
  }

  async addHashed(digest: string, size: number, body: AsyncIterable<Uint8Array>, hashed: Promise<{ digest: string; size: number }>): Promise<void> {
    if (this.written.has(digest)) return;
    // Settled whichever way the entry ends: a failed entry must not leave the hash's rejection unhandled.
    const seen = hashed.then(
      (h) => h,
      (err: Error) => err,
    );
    await this.entry(blobPath(digest), bounded(digest, size, body), size);
    const h = await seen;
    if (h instanceof Error) throw h;
    if (h.size !== size) throw new BlobMismatchError(digest, `is ${h.size} bytes, expected ${size}`);
    if (h.digest !== digest) throw new BlobMismatchError(digest, `does not match its digest (computed ${h.digest})`);
    this.written.add(digest);
  }

  async finish(entries: readonly Descriptor[]): Promise<void> {
    const text = Buffer.from(`${JSON.stringify(mergeIndex([], entries), null, 2)}\n`);
    await this.entry('index.json', single(text), text.length);
    this.pack.finalize();
    await this.done;
    await this.ends.commit();
  }

  async abort(): Promise<void> {
    this.pack.destroy();
    await this.done.catch(() => undefined);
    await this.ends.discard();
  }

  private async entry(name: string, body: AsyncIterable<Uint8Array>, size: number): Promise<void> {
    if (this.broken || this.pack.destroyed) throw this.broken ?? new Error("the bundle's destination closed");
    await new Promise<void>((resolve, reject) => {
      const w = this.pack.entry({ name, size, mode: 0o644, mtime: new Date(0) }, (err) =>
        err ? reject(err) : resolve(),
      ) as unknown as NodeJS.WritableStream & {
        destroy(err?: Error): void;
      };
      // The failure is reported once, through reject; the entry's own error event has nothing more to say.
      w.on('error', () => undefined);
      const feed = async () => {
        for await (const chunk of body) {
          if (this.broken || this.pack.destroyed) throw this.broken ?? new Error("the bundle's destination closed");
          if (!w.write(chunk)) await once(w, 'drain');
        }
        w.end();
      };
      feed().catch((err: Error) => {
        w.destroy(err);
        reject(err);
      });
    });
  }
}

/** Writes all of `chunk` at `at`. */
export async function writeAt(fh: FileHandle, chunk: Uint8Array, at: number): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) offset += (await fh.write(chunk, offset, chunk.length - offset, at + offset)).bytesWritten;
}

/** One chunk as a body. */
export async function* single(body: Uint8Array): AsyncGenerator<Uint8Array> {
  yield body;
}
