/** @module storage/oci-layout — OCI image layouts (a directory, or one tar) written and read as streams: the bundles that carry images to sites without a link. */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { Digester, isDigest, parseDigest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { OCI_INDEX } from '../oci/mediatypes.js';

/** The annotation that names an image in a layout's index.json (the image's original full name here). */
export const REF_NAME = 'org.opencontainers.image.ref.name';
/** containerd's export names the image here and puts only the tag in REF_NAME; read as a fallback. */
export const CONTAINERD_NAME = 'io.containerd.image.name';
/** index.json is small; a bigger one is not a layout this reads. */
export const MAX_INDEX_BYTES = 4 * 1024 * 1024;
const LAYOUT_FILE = JSON.stringify({ imageLayoutVersion: '1.0.0' });
/** Read and write in large pieces: a bundle moves gigabytes. */
const CHUNK = 1024 * 1024;

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
  /** Writes index.json with these entries (a directory keeps its other entries) and completes the layout. */
  finish(entries: readonly Descriptor[]): Promise<void>;
  /** Gives up: a tar in progress is removed; a directory keeps its whole blobs for the next run. */
  abort(): Promise<void>;
}

export async function openLayoutWriter(path: string): Promise<LayoutWriter> {
  return isTarPath(path) ? TarLayoutWriter.toFile(path) : DirLayoutWriter.open(path);
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
  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<DirLayoutWriter> {
    await mkdir(join(dir, 'blobs'), { recursive: true });
    await writeFile(join(dir, 'oci-layout'), LAYOUT_FILE);
    return new DirLayoutWriter(dir);
  }

  async has(digest: string, size: number): Promise<boolean> {
    const s = await stat(join(this.dir, blobPath(digest))).catch(() => undefined);
    return s?.isFile() === true && s.size === size;
  }

  async addBlob(digest: string, size: number, body: AsyncIterable<Uint8Array>): Promise<void> {
    const target = join(this.dir, blobPath(digest));
    await mkdir(join(target, '..'), { recursive: true });
    // Written beside its final name and renamed when verified: a killed export leaves no partial blob under a digest.
    const temp = `${target}.partial`;
    try {
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
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
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

  /** Written beside its final name and renamed once complete: a killed export leaves no tar that looks whole. */
  static toFile(path: string): Promise<TarLayoutWriter> {
    const temp = `${path}.partial`;
    return TarLayoutWriter.open(createWriteStream(temp), { commit: () => rename(temp, path), discard: () => rm(temp, { force: true }) });
  }

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

async function writeAt(fh: FileHandle, chunk: Uint8Array, at: number): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) offset += (await fh.write(chunk, offset, chunk.length - offset, at + offset)).bytesWritten;
}

async function* single(body: Uint8Array): AsyncGenerator<Uint8Array> {
  yield body;
}

// ---------------------------------------------------------------------------------------------
// Reading

/** One blob of a layout. In a tar, blobs come in archive order and one not read is skipped over. */
export interface LayoutBlob {
  readonly digest: string;
  readonly size: number;
  /** Its bytes, read once, unverified (the store verifies as it writes). */
  read(): AsyncIterable<Uint8Array>;
}

export interface LayoutReader {
  /** Every blob of the layout once; names that are not digests are passed over. */
  blobs(): AsyncGenerator<LayoutBlob>;
  /** index.json; in a tar, known once blobs() has gone through the archive. */
  index(): Promise<LayoutIndex>;
  /** Reads one blob directly (a directory) or undefined (a tar, or absent). */
  blob(digest: string): AsyncIterable<Uint8Array> | undefined;
}

export async function openLayoutReader(path: string): Promise<LayoutReader> {
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new Error(`${path} does not exist`);
  if (s.isDirectory()) {
    const layout = await readFile(join(path, 'oci-layout'), 'utf8').catch(() => undefined);
    if (layout === undefined) throw new Error(`${path} is not an OCI image layout (no oci-layout file)`);
    return new DirLayoutReader(path);
  }
  return new TarLayoutReader(path);
}

function blobDigest(name: string): string | undefined {
  const m = /^(?:\.\/)?blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(name);
  const digest = m ? `${m[1]}:${m[2]}` : undefined;
  return digest && isDigest(digest) ? digest : undefined;
}

class DirLayoutReader implements LayoutReader {
  constructor(private readonly dir: string) {}

  async *blobs(): AsyncGenerator<LayoutBlob> {
    const base = join(this.dir, 'blobs');
    for (const algorithm of await readdir(base).catch(() => [] as string[])) {
      for (const encoded of await readdir(join(base, algorithm)).catch(() => [] as string[])) {
        const digest = blobDigest(`blobs/${algorithm}/${encoded}`);
        if (!digest) continue;
        const s = await stat(join(base, algorithm, encoded));
        if (!s.isFile()) continue;
        yield { digest, size: s.size, read: () => this.blob(digest) };
      }
    }
  }

  async index(): Promise<LayoutIndex> {
    const file = join(this.dir, 'index.json');
    const s = await stat(file).catch(() => undefined);
    if (!s) throw new Error(`${this.dir} has no index.json`);
    if (s.size > MAX_INDEX_BYTES) throw new Error(`${file} is ${s.size} bytes, more than ${MAX_INDEX_BYTES}`);
    return parseLayoutIndex(await readFile(file, 'utf8'));
  }

  blob(digest: string): AsyncIterable<Uint8Array> {
    return createReadStream(join(this.dir, blobPath(digest)), { highWaterMark: CHUNK });
  }
}

class TarLayoutReader implements LayoutReader {
  private indexText: string | undefined;
  private sawLayout = false;

  constructor(private readonly path: string) {}

  async *blobs(): AsyncGenerator<LayoutBlob> {
    const extract = tar.extract();
    const source = pipeline(createReadStream(this.path, { highWaterMark: CHUNK }), extract);
    source.catch(() => undefined);
    for await (const entry of extract) {
      const name = entry.header.name;
      const digest = entry.header.type === 'file' ? blobDigest(name) : undefined;
      if (digest) {
        let taken = false;
        yield {
          digest,
          size: entry.header.size ?? 0,
          read: () => {
            taken = true;
            return entry as AsyncIterable<Uint8Array>;
          },
        };
        if (!taken) entry.resume();
      } else if (/^(?:\.\/)?index\.json$/.test(name)) {
        this.indexText = await readSmall(entry as AsyncIterable<Uint8Array>, name);
      } else {
        if (/^(?:\.\/)?oci-layout$/.test(name)) this.sawLayout = true;
        entry.resume();
      }
    }
    await source;
  }

  async index(): Promise<LayoutIndex> {
    if (this.indexText === undefined) {
      throw new Error(`${this.path} holds no index.json${this.sawLayout ? '' : ' and no oci-layout: it is not an OCI image layout archive'}`);
    }
    return parseLayoutIndex(this.indexText);
  }

  blob(): undefined {
    return undefined;
  }
}

async function readSmall(source: AsyncIterable<Uint8Array>, name: string): Promise<string> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of source) {
    n += chunk.length;
    if (n > MAX_INDEX_BYTES) throw new Error(`${name} is more than ${MAX_INDEX_BYTES} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}
