/**
 * @module storage/tar-file-writer — an OCI image layout written as one tar file by position: each
 * entry's place is reserved up front (a header, then its data), so several blobs are copied into the
 * archive at once, a stored blob file's bytes by a hasher's thread that hashes what it copies. The
 * tar framing (ustar headers, pax records for long names and sizes past 8 GiB) is written here:
 * tar-stream packs one entry after the other through a JavaScript stream, which halves the speed.
 */
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { parseDigest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import type { FileDigests } from './blob-files.js';
import { BlobMismatchError, blobPath, mergeIndex, single, verified, writeAt, type LayoutWriter } from './oci-layout.js';

const BLOCK = 512;
const LAYOUT_FILE = JSON.stringify({ imageLayoutVersion: '1.0.0' });
/** Sizes an 11-digit octal field holds; past it, a pax record carries the size. */
const MAX_OCTAL_SIZE = 8 ** 11 - 1;
/** A blob this big is written back to the disk once copied, while the next ones are copied, not all at once at the end. */
const WRITE_BACK = 1024 * 1024;

/** The header block(s) of a regular file entry: a pax record first when the name or size does not fit ustar. */
export function tarHeader(name: string, size: number): Buffer {
  const records: string[] = [];
  let short = name;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut > 0 && Buffer.byteLength(name.slice(cut + 1)) <= 100 && Buffer.byteLength(name.slice(0, cut)) <= 155) {
      prefix = name.slice(0, cut);
      short = name.slice(cut + 1);
    } else {
      records.push(paxRecord('path', name));
      short = name.slice(-100);
    }
  }
  if (size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(size)));
  const main = ustar(short, prefix, size > MAX_OCTAL_SIZE ? 0 : size, '0');
  if (records.length === 0) return main;
  const body = Buffer.from(records.join(''));
  const padded = Buffer.alloc(Math.ceil(body.length / BLOCK) * BLOCK);
  body.copy(padded);
  return Buffer.concat([ustar(`PaxHeader/${short}`.slice(0, 100), '', body.length, 'x'), padded, main]);
}

/** `<length> <key>=<value>\n`, the length counting itself. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(rest) + 1;
  while (String(length).length + Buffer.byteLength(rest) !== length) length = String(length).length + Buffer.byteLength(rest);
  return `${length}${rest}`;
}

function ustar(name: string, prefix: string, size: number, type: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h.write(type, 156, 'latin1');
  h.write('ustar\0' + '00', 257, 'latin1');
  h.write(prefix, 345, 155, 'utf8');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/**
 * Writes `path` by way of `path.partial`, renamed once complete and synced: a killed export leaves
 * no tar that looks whole. `hasher`: stored blob files are copied in whole (addFile).
 */
export class TarFileWriter implements LayoutWriter {
  private readonly written = new Set<string>();
  /** Where the next entry's header goes. */
  private end = 0;
  readonly addFile?: (digest: string, size: number, file: string) => Promise<void>;

  private constructor(
    private readonly fh: FileHandle,
    private readonly temp: string,
    private readonly path: string,
    hasher?: FileDigests,
  ) {
    if (hasher) this.addFile = (digest, size, file) => this.copyFile(digest, size, file, hasher);
  }

  static async open(path: string, hasher?: FileDigests): Promise<TarFileWriter> {
    const temp = `${path}.partial`;
    const w = new TarFileWriter(await open(temp, 'w'), temp, path, hasher);
    await w.entry('oci-layout', Buffer.from(LAYOUT_FILE));
    return w;
  }

  async has(digest: string): Promise<boolean> {
    return this.written.has(digest);
  }

  async addBlob(digest: string, size: number, body: AsyncIterable<Uint8Array>): Promise<void> {
    if (this.written.has(digest)) return;
    const at = await this.reserve(blobPath(digest), size, digest);
    // Bytes in a tar cannot be taken back: a mismatch found at the end spoils the archive (the caller aborts it).
    for await (const chunk of verified(digest, size, body)) {
      await writeAt(this.fh, chunk, at.data + at.done);
      at.done += chunk.length;
    }
    if (size >= WRITE_BACK) await this.fh.datasync();
  }

  addBytes(digest: string, body: Uint8Array): Promise<void> {
    return this.addBlob(digest, body.length, single(body));
  }

  /** A stored file copied into its place by a hasher's thread, hashed as it is copied. */
  private async copyFile(digest: string, size: number, file: string, hasher: FileDigests): Promise<void> {
    if (this.written.has(digest)) return;
    // A file gone (evicted) is named before its place is taken; after that, any failure spoils the archive.
    const found = (await stat(file)).size;
    if (found !== size) throw new BlobMismatchError(digest, `is ${found} bytes, expected ${size}`);
    const at = await this.reserve(blobPath(digest), size, digest);
    let seen: { digest: string; size: number };
    try {
      seen = await hasher.copy(file, { offset: 0, length: size }, this.temp, at.data, parseDigest(digest).algorithm);
    } catch (err) {
      throw new Error(`blob ${digest} could not be copied into the archive: ${(err as Error).message}`);
    }
    if (seen.size !== size) throw new BlobMismatchError(digest, `is ${seen.size} bytes, expected ${size}`);
    if (seen.digest !== digest) throw new BlobMismatchError(digest, `does not match its digest (computed ${seen.digest})`);
    if (size >= WRITE_BACK) await this.fh.datasync();
  }

  async finish(entries: readonly Descriptor[]): Promise<void> {
    await this.entry('index.json', Buffer.from(`${JSON.stringify(mergeIndex([], entries), null, 2)}\n`));
    // Two zero blocks end the archive; the padding after each entry is already zeros (never written).
    await this.fh.truncate(this.end + 2 * BLOCK);
    await this.fh.sync();
    await this.fh.close();
    await rename(this.temp, this.path);
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await rm(this.temp, { force: true });
  }

  private async entry(name: string, body: Buffer): Promise<void> {
    const at = await this.reserve(name, body.length);
    await writeAt(this.fh, body, at.data);
  }

  /** Takes the next place in the archive for an entry and writes its header; its data goes at `data`. */
  private async reserve(name: string, size: number, digest?: string): Promise<{ data: number; done: number }> {
    const header = tarHeader(name, size);
    const start = this.end;
    this.end = start + header.length + Math.ceil(size / BLOCK) * BLOCK;
    if (digest !== undefined) this.written.add(digest);
    await writeAt(this.fh, header, start);
    return { data: start + header.length, done: 0 };
  }
}
