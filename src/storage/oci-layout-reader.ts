/** @module storage/oci-layout-reader — reading an OCI image layout (a directory, or one tar) as a stream of blobs and its index.json: the bundles `berth import` loads. */
import { createReadStream } from 'node:fs';
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { isDigest } from '../oci/digest.js';
import { CHUNK, MAX_INDEX_BYTES, blobPath, parseLayoutIndex, type LayoutIndex } from './oci-layout.js';
import type { FileRegion } from './blob-files.js';
import { readExactly, tarEntries } from './tar-index.js';

/** One blob of a layout. In a tar, blobs come in archive order and one not read is skipped over. */
export interface LayoutBlob {
  readonly digest: string;
  readonly size: number;
  /** Its bytes, read once, unverified (the store verifies as it writes). */
  read(): AsyncIterable<Uint8Array>;
  /** The regular file holding it, in a directory layout (a store can copy it whole). */
  readonly file?: string;
  /** Where it lies in a tar that is a regular file (a store copies the region; one not wanted is never read). */
  readonly region?: FileRegion;
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
  // A tar on disk is indexed by its headers; a pipe (stdin) can only be read through once.
  return s.isFile() ? new IndexedTarReader(path) : new TarLayoutReader(path);
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
        yield { digest, size: s.size, read: () => this.blob(digest), file: join(base, algorithm, encoded) };
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

/** A tar that is a regular file: headers read by position, each blob a region of the file, read only when taken. */
class IndexedTarReader implements LayoutReader {
  private indexText: string | undefined;
  private sawLayout = false;

  constructor(private readonly path: string) {}

  async *blobs(): AsyncGenerator<LayoutBlob> {
    const fh = await open(this.path, 'r');
    try {
      for await (const entry of tarEntries(fh, (await fh.stat()).size, this.path)) {
        const { name, offset, size } = entry;
        const digest = entry.type === '0' ? blobDigest(name) : undefined;
        if (digest) {
          const end = offset + size - 1;
          const read = () => (size === 0 ? empty() : createReadStream(this.path, { start: offset, end, highWaterMark: CHUNK }));
          yield { digest, size, read, region: { file: this.path, offset } };
        } else if (/^(?:\.\/)?index\.json$/.test(name)) {
          if (size > MAX_INDEX_BYTES) throw new Error(`${name} is more than ${MAX_INDEX_BYTES} bytes`);
          const body = Buffer.alloc(size);
          await readExactly(fh, body, offset);
          this.indexText = body.toString('utf8');
        } else if (/^(?:\.\/)?oci-layout$/.test(name)) this.sawLayout = true;
      }
    } finally {
      await fh.close();
    }
  }

  index(): Promise<LayoutIndex> {
    return tarIndex(this.path, this.indexText, this.sawLayout);
  }

  blob(): undefined {
    return undefined;
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

  index(): Promise<LayoutIndex> {
    return tarIndex(this.path, this.indexText, this.sawLayout);
  }

  blob(): undefined {
    return undefined;
  }
}

async function tarIndex(path: string, text: string | undefined, sawLayout: boolean): Promise<LayoutIndex> {
  if (text === undefined) throw new Error(`${path} holds no index.json${sawLayout ? '' : ' and no oci-layout: it is not an OCI image layout archive'}`);
  return parseLayoutIndex(text);
}

async function* empty(): AsyncGenerator<Uint8Array> {}

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
