/** @module cache/lazy-range — a range of a blob being filled, answered as soon as its bytes can be had: from the fill's file as far as the fill reached, from kept ranges, from an upstream Range request for the rest (docs/lazy-pulling.md). */
import type { KeptRanges } from '../storage/kept-ranges.js';
import type { BlobFill } from './fill.js';

/** Bytes [start, end] from the upstream, or undefined when it does not answer ranges (the fill serves them then). */
export type FetchRange = (start: number, end: number) => Promise<AsyncIterable<Uint8Array> | undefined>;

/**
 * Missing spans up to this size are asked of the upstream; longer ones follow the fill. Lazy
 * readers (a footer, a table of contents, chunks) ask for small spans; a client fetching a whole
 * layer as parallel ranges asks for large ones, and asking the upstream for those as well as
 * the fill would bring the layer across the link twice (docs/lazy-pulling.md).
 */
export const FETCH_MAX_BYTES = 1024 * 1024;

/**
 * Bytes [start, end] of the blob `fill` is bringing. What the fill has written is read from its
 * file, what earlier ranges brought from `kept`; the rest is asked of the upstream at once (and
 * kept by `fetch`), not waited for. Resolves when the first source answered, so a failing
 * upstream is still reported before any header is sent.
 */
export async function lazyRange(fill: BlobFill, fetch: FetchRange, start: number, end: number, kept?: KeptRanges): Promise<AsyncIterable<Uint8Array>> {
  // A pass-through fill (disk full) holds only a window in memory; its file cannot serve ranges.
  const have = fill.mode === 'memory' ? 0 : fill.written;
  if (fill.state === 'verified' || end < have) return fill.createReader(start, end, true);
  // Following the fill needs the fill running: a fill held back for this range starts now.
  const follow = (): AsyncIterable<Uint8Array> => {
    fill.release();
    return fill.createReader(start, end, true);
  };
  if (start < have) return concat(fill.createReader(start, have - 1, true), () => lazyRange(fill, fetch, have, end, kept));
  const rest = (from: number) => lazyRange(fill, fetch, from, end, kept);
  const keptEnd = kept?.discarded === false ? kept.presentEnd(start) : undefined;
  if (keptEnd !== undefined) {
    const stop = Math.min(keptEnd, end + 1);
    const part = kept!.read(start, stop);
    return stop > end ? part : concat(part, () => rest(stop));
  }
  // The missing span: up to the next kept bytes, or the range's end.
  const next = kept?.discarded === false ? kept.nextStart(start) : undefined;
  const gapEnd = next !== undefined && next <= end ? next - 1 : end;
  if (gapEnd - start + 1 > FETCH_MAX_BYTES) return follow();
  const body = await fetch(start, gapEnd);
  if (!body) return follow();
  return gapEnd === end ? body : concat(body, () => rest(gapEnd + 1));
}

/** `first`, then what `next` opens once `first` is done. */
async function* concat(first: AsyncIterable<Uint8Array>, next: () => Promise<AsyncIterable<Uint8Array>>): AsyncGenerator<Uint8Array> {
  yield* first;
  yield* await next();
}
