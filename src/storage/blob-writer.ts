/** @module storage/blob-writer — one blob being written to a temp file: hashed as it goes, verified, then published by the blob store. */
import { link, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { Digester, type Algorithm } from '../oci/digest.js';
import { digestInvalid, sizeInvalid } from '../oci/error-catalogue.js';

export class BlobWriter {
  readonly tempPath: string;
  private readonly digester: Digester;
  /** Open only while bytes are being written: an upload between requests holds no descriptor. */
  private fh: FileHandle | undefined;

  constructor(
    /** Renames the synced, verified temp file into place (the blob store's publish). */
    private readonly publish: (tempPath: string, digest: string) => Promise<void>,
    fh: FileHandle,
    tempPath: string,
    algorithm: Algorithm,
  ) {
    this.fh = fh;
    this.tempPath = tempPath;
    this.digester = new Digester(algorithm);
  }

  /** The file, reopened after release(); the hash state stays in memory meanwhile. */
  private async file(): Promise<FileHandle> {
    this.fh ??= await open(this.tempPath, 'r+');
    return this.fh;
  }

  get bytesWritten(): number {
    return this.digester.bytes;
  }

  get algorithm(): Algorithm {
    return this.digester.algorithm;
  }

  async write(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    const fh = await this.file();
    while (offset < chunk.length) {
      const { bytesWritten } = await fh.write(chunk, offset, chunk.length - offset, this.digester.bytes + offset);
      offset += bytesWritten;
    }
    this.digester.update(chunk);
  }

  /**
   * As write(), with the chunk hashed while the disk write runs (the hash on this thread, the write
   * on libuv's pool): imports of whole files run at disk speed. After a failure, abort() the writer.
   */
  async writeHashing(chunk: Uint8Array): Promise<void> {
    const fh = await this.file();
    const at = this.digester.bytes;
    const written = fh.write(chunk, 0, chunk.length, at);
    this.digester.update(chunk);
    let { bytesWritten: offset } = await written;
    while (offset < chunk.length) offset += (await fh.write(chunk, offset, chunk.length - offset, at + offset)).bytesWritten;
  }

  /**
   * Makes this writer's temp file another name of `path`, a file another process is writing this
   * same blob into: the bytes then reach the disk once. Until the writer takes over (write()
   * again, at its offset), bytes are only hashed. Only before the first byte.
   */
  async share(path: string): Promise<void> {
    if (this.digester.bytes > 0) throw new Error(`${this.tempPath} already holds bytes of its own`);
    await this.close();
    const name = `${this.tempPath}.shared`;
    await link(path, name);
    // Atomically in place of the empty file this writer started with.
    await rename(name, this.tempPath);
  }

  /** Hashes bytes that could not be written (disk full), or that the file already holds (share), so they can still be verified in passing. */
  hashOnly(chunk: Uint8Array): void {
    this.digester.update(chunk);
  }

  /** Checks digest and size of everything seen, without publishing anything. */
  verify(expectedDigest: string, expectedSize?: number): { digest: string; size: number } {
    const actual = this.digester.digest();
    const size = this.digester.bytes;
    if (expectedSize !== undefined && expectedSize >= 0 && size !== expectedSize) {
      throw sizeInvalid(`content of ${expectedDigest} is ${size} bytes, expected ${expectedSize}`);
    }
    if (actual !== expectedDigest) throw digestInvalid(`content does not match digest ${expectedDigest} (computed ${actual})`);
    return { digest: actual, size };
  }

  /**
   * Verifies and publishes: digest and size must match, then fsync, rename into place, fsync the
   * directory, so a crash at any instant leaves either nothing or the complete blob.
   */
  async commit(expectedDigest: string, expectedSize?: number): Promise<{ digest: string; size: number }> {
    let verified: { digest: string; size: number };
    try {
      verified = this.verify(expectedDigest, expectedSize);
    } catch (err) {
      await this.abort();
      throw err;
    }
    const { digest: actual, size } = verified;
    await (await this.file()).sync();
    await this.close();
    await this.publish(this.tempPath, expectedDigest);
    return { digest: actual, size };
  }

  async abort(): Promise<void> {
    await this.close();
    await rm(this.tempPath, { force: true });
  }

  /** Closes the file but keeps it and the hash state: a later write() or commit() reopens it (uploads between requests). */
  async release(): Promise<void> {
    await this.close();
  }

  private async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}
