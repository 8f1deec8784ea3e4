/** @module cache/blob-handle — what a reader of one blob gets from the cache, stored or being filled: its bytes by stream, by send, or by range. */
import type { Readable, Writable } from 'node:stream';
import type { OnBytes } from '../storage/send.js';
import type { Outcome } from '../ports/request-observer.js';

export interface BlobHandle {
  readonly digest: string;
  /** Known for stored blobs and for fills whose upstream sent Content-Length. */
  readonly size: number | undefined;
  readonly outcome: Outcome;
  /** Bytes [start, end] inclusive; end defaults to the last byte. */
  open(start?: number, end?: number): Readable;
  /** Resolves with the final size (waits for a fill without a known size). */
  finalSize(): Promise<number>;
  /**
   * Gives the handle back: until then the blob is kept from eviction (and a stored one is held
   * open). Streams already opened finish first. Call it exactly once, opened or not.
   */
  close(): Promise<void>;
  /**
   * Writes bytes [start, end] to `out` and ends it, without a stream in between (see
   * storage/send; a fill's bytes as they arrive). Rejects when `out` closes early, the file cannot
   * be read or the fill fails.
   */
  send?(out: Writable, start: number, end: number, onBytes: OnBytes): Promise<void>;
  /** A stored blob only: as `send`, but leaves `out` open (one part of a multipart answer). */
  readonly sendPart?: (out: Writable, start: number, end: number, onBytes: OnBytes) => Promise<void>;
  /**
   * A blob not yet verified (`proxy.rangefetch`): bytes [start, end] as soon as they can be had,
   * from the fill's file or a Range request upstream; resolves once the source answered. As
   * trustworthy as the upstream's own answer (docs/lazy-pulling.md).
   */
  range?(start: number, end: number): Promise<AsyncIterable<Uint8Array>>;
}
