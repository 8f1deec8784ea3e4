/** @module ports/file-digests — the port for hashing files, or regions of them, off the main thread (util/file-hasher implements it): what bundles are verified with. */
import type { ByteRange } from '../util/file-hasher.js';

/** Digests of files or their regions: `<algorithm>:<hex>` and the size read. */
export interface FileDigests {
  hash(path: string, algorithm: string, range?: ByteRange): Promise<{ digest: string; size: number }>;
  /** Copies `range` of `from` into `to` at `at` (not truncated), hashing exactly what it wrote; `size` is what was copied. */
  copy(from: string, range: ByteRange, to: string, at: number, algorithm: string): Promise<{ digest: string; size: number }>;
}

/** A blob's bytes as a region of a larger file (an entry of a tar bundle). */
export interface FileRegion {
  readonly file: string;
  readonly offset: number;
}

/** Where a blob of a bundle comes from: a whole file, a region of one, or a stream. */
export type BundleSource = string | FileRegion | AsyncIterable<Uint8Array>;
