/** @module cache/lazy-range — a range of a blob being filled, answered as soon as its bytes can be had: from the fill's file as far as the fill reached, from kept ranges, from an upstream Range request for the rest (docs/lazy-pulling.md). */
import { Readable } from 'node:stream';
import type { KeptRanges } from '../storage/kept-ranges.js';
import type { BlobFill } from './fill.js';

/** Bytes [start, end] from the upstream, or undefined when it does not answer ranges (the fill serves them then). */
export type FetchRange = (start: number, end: number) => Promise<AsyncIterable<Uint8Array> | undefined>;

/**
 * The largest piece asked of the upstream at once. Range single-flight holds a piece in memory
 * while it arrives (for the requests that joined it), so a longer missing span is asked for piece
 * after piece, each kept in the partial file as it arrives: memory stays flat whatever the span.
 */
export const FETCH_MAX_BYTES = 1024 * 1024;

/**
 * The most of one client range (what is left of it to answer) asked of the upstream, piece after
 * piece; past a sixteenth of the blob (and past SPAN_FLOOR_BYTES) a range follows the whole-blob
 * fill instead. Lazy readers (a footer, a table of contents, chunks, a snapshotter's reads of a
 * few MiB) stay under it. A layer split into parallel ranges (containerd 2.x: 8 or so) goes
 * over it: one fill stream brings such a layer faster than many streams of pieces, each its own
 * request (8 x 8 MiB of a 64 MiB layer: 1.09x direct by the fill, 1.14-1.24x in pieces). A
 * multi-GB layer fetched in a few huge ranges is the fill's work too; it skips what ranges
 * brought either way (docs/lazy-pulling.md).
 */
export const SPAN_MAX_BYTES = 64 * 1024 * 1024;
/** Ranges up to this size go to the upstream in pieces even on a small blob (a stargz layer of 16 MiB read 2 MiB at a time). */
export const SPAN_FLOOR_BYTES = 4 * 1024 * 1024;
/** The share of the blob past which a range is the fill's work. */
const SPAN_SHARE = 16;

/**
 * Bytes [start, end] of the blob `fill` is bringing. What the fill has written is read from its
 * file, what earlier ranges brought from `kept`; the rest is asked of the upstream at once, in
 * pieces of at most FETCH_MAX_BYTES (each kept by `fetch`), not waited for. Resolves when the first source answered, so a failing
 * upstream is still reported before any header is sent.
 */
export async function lazyRange(
  fill: BlobFill,
  fetch: FetchRange,
  start: number,
  end: number,
  kept?: KeptRanges,
  spanMax = SPAN_MAX_BYTES,
): Promise<AsyncIterable<Uint8Array>> {
  const from = (pos: number) => source(fill, fetch, pos, end, kept, spanMax);
  const first = await from(start);
  return first.to === end ? first.body : chain(first, end, from);
}

/** Where bytes [start, to] come from: the first source for bytes from `start` of a range ending at `end`. */
interface Source {
  readonly body: AsyncIterable<Uint8Array>;
  readonly to: number;
}

async function source(fill: BlobFill, fetch: FetchRange, start: number, end: number, kept: KeptRanges | undefined, spanMax: number): Promise<Source> {
  // A pass-through fill (disk full) holds only a window in memory; its file cannot serve ranges.
  const have = fill.mode === 'memory' ? 0 : fill.written;
  if (fill.state === 'verified' || end < have) return { body: fill.createReader(start, end, true), to: end };
  // Following the fill needs the fill running: a fill held back for this range starts now.
  const follow = (): Source => {
    fill.release();
    return { body: fill.createReader(start, end, true), to: end };
  };
  if (start < have) return { body: fill.createReader(start, have - 1, true), to: have - 1 };
  const keptEnd = kept?.discarded === false ? kept.presentEnd(start) : undefined;
  if (keptEnd !== undefined) {
    const stop = Math.min(keptEnd, end + 1);
    return { body: kept!.read(start, stop), to: stop - 1 };
  }
  // The missing span: up to the next kept bytes, or the range's end.
  const next = kept?.discarded === false ? kept.nextStart(start) : undefined;
  const gapEnd = next !== undefined && next <= end ? next - 1 : end;
  // A large share of the blob (a whole-layer read split into parallel ranges) is the fill's to bring.
  const bound = Math.max(FETCH_MAX_BYTES, Math.min(spanMax, Math.max(SPAN_FLOOR_BYTES, (fill.size ?? 0) / SPAN_SHARE)));
  if (end - start + 1 > bound) return follow();
  // One piece now; what follows it is planned again once it is sent (the fill, kept ranges or
  // another request may have brought some of it meanwhile).
  const to = Math.min(gapEnd, start + FETCH_MAX_BYTES - 1);
  const body = await fetch(start, to);
  return body ? { body, to } : follow();
}

/**
 * `first`, then each next source until the range's `end`. The next is asked for while an upstream
 * piece is being sent, so the link does not idle for a round trip between pieces; at most one
 * piece waits ahead (its bytes stay in the socket until read).
 */
async function* chain(first: Source, end: number, next: (from: number) => Promise<Source>): AsyncGenerator<Uint8Array> {
  let ahead: Promise<Source> | undefined;
  try {
    for (let part = first; ;) {
      if (part.to >= end) return yield* part.body;
      ahead = next(part.to + 1);
      // Awaited below, or let go in `finally`: a rejection here is never unhandled.
      ahead.catch(() => undefined);
      yield* part.body;
      part = await ahead;
      ahead = undefined;
    }
  } finally {
    if (ahead) await drop(ahead);
  }
}

/** Lets go of a source planned ahead but never sent (the client left): its streams close, its fetch is reported done. */
async function drop(planned: Promise<Source>): Promise<void> {
  const source = await planned.catch(() => undefined);
  if (!source) return;
  if (source.body instanceof Readable) return void source.body.destroy();
  // A generator never started runs no cleanup when returned: it is started first.
  const it = source.body[Symbol.asyncIterator]();
  await it
    .next()
    .then(() => it.return?.())
    .catch(() => undefined);
}
