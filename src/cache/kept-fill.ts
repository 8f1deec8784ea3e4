/** @module cache/kept-fill — the body of a fill that skips what ranges already brought: kept bytes read back from the partial file, each gap asked of the upstream and cut where kept bytes begin (docs/lazy-pulling.md). */
import type { Logger } from 'pino';
import type { RangeCoordinator, RangePart } from '../ports/fills.js';
import type { KeptRanges, KeptStore } from '../storage/kept-ranges.js';
import { blobUnknown } from '../oci/error-catalogue.js';
import { getBlob, getBlobRange } from '../upstream/registry-api.js';
import type { Target } from '../upstream/target.js';
import { counted } from './cache-observer.js';
import type { BlobFill } from './fill.js';
import { within } from '../util/within.js';

/** How long a fill waits for a span a range fetch is bringing before fetching it itself (that range's client may have stalled). */
const ARRIVING_WAIT_MS = 10_000;

/** The longest gap request while a blob has kept ranges: one more request per 8 MiB, against bytes in flight lost to each cut. */
const GAP_MAX_BYTES = 8 * 1024 * 1024;

/** The range fetches of the blob other workers of the host have under way (workers/range-table). */
export interface Elsewhere {
  /** Fetches under way overlapping [from, to], by start. */
  under(from: number, to: number): Promise<readonly RangePart[]>;
  /** Resolves when that fetch ended; true: its bytes are in the kept-ranges file. */
  wait(flight: number): Promise<boolean>;
}

/** An upstream answer from `pos` on: `start` is `pos` when it honoured the Range, 0 when it sent the whole blob. */
export interface GapBody {
  readonly body: AsyncIterable<Uint8Array>;
  readonly start: number;
}

/**
 * The blob's bytes from `offset` on, in order, so the fill hashes every byte whichever source
 * it came from. Kept spans are read from disk; a gap is one open-ended Range request, cut as soon
 * as it reaches bytes kept meanwhile (a lazy client's ranges ahead of the fill), so those cross
 * the link once. An upstream that ignores Range gets a plain fill from there: its whole answer,
 * the bytes before `pos` skipped. A body that ends early ends this one (the pump resumes).
 */
export async function* keptFill(
  offset: number,
  size: () => number | undefined,
  kept: () => KeptRanges | undefined,
  open: (pos: number, last?: number) => Promise<GapBody>,
  waitMs = ARRIVING_WAIT_MS,
  /** An answer from `offset` opened already (see openFillBody): used for the first gap. */
  first?: GapBody,
  /** Other workers' range fetches: waited for, then read from the kept-ranges file, not fetched again. */
  elsewhere?: Elsewhere,
): AsyncGenerator<Uint8Array> {
  let opened = first;
  const live = (): KeptRanges | undefined => {
    const k = kept();
    return k && !k.discarded ? k : undefined;
  };
  let pos = offset;
  /** Where a span being kept was waited for in vain (its client stalled): fetched here instead. */
  let gaveUpAt = -1;
  for (;;) {
    const total = size();
    if (total !== undefined && pos >= total) return;
    const k = live();
    const end = k?.presentEnd(pos);
    if (k && end !== undefined) {
      yield* k.read(pos, end);
      pos = end;
      continue;
    }
    const arriving = k?.arrivingAt(pos);
    if (arriving && gaveUpAt !== pos) {
      // A range fetch is bringing these bytes: wait for it rather than fetch them too.
      if (
        !(await within(
          arriving.then(() => true),
          waitMs,
        ))
      )
        gaveUpAt = pos;
      continue;
    }
    const lazy = live();
    // Other workers' range fetches: asked first, then the map read again, so a fetch that ended
    // in between is in the map (a span is recorded before its fetch is reported done).
    const theirs = lazy && elsewhere ? await elsewhere.under(pos, (total ?? Number.MAX_SAFE_INTEGER) - 1).catch(() => []) : [];
    if (lazy && elsewhere) {
      await lazy.reload().catch(() => undefined);
      if (lazy.presentEnd(pos) !== undefined) continue;
      const here = theirs.find((p) => p.from <= pos);
      if (here && gaveUpAt !== pos) {
        if (!(await within(elsewhere.wait(here.flight), waitMs))) gaveUpAt = pos;
        await lazy.reload().catch(() => undefined);
        continue;
      }
    }
    // Up to the next bytes kept or arriving: a bounded request, so nothing is sent past them.
    // While a lazy client reads the blob, at most GAP_MAX_BYTES per request: its next ranges are
    // then known before the fill asks for their bytes, instead of being cut out of a request under way.
    const ahead = theirs.find((p) => p.from > pos)?.from ?? Infinity;
    const next = lazy ? Math.min(lazy.nextStart(pos, true) ?? Infinity, ahead, pos + GAP_MAX_BYTES, total ?? Infinity) : undefined;
    const last = next === undefined || next === Infinity ? undefined : next - 1;
    const { body, start } = opened && pos === offset ? opened : await open(pos, last);
    opened = undefined;
    if (start !== pos) {
      yield* skip(body, pos - start);
      return;
    }
    let cut = false;
    for await (const chunk of body) {
      const stop = live()?.nextStart(pos, true);
      if (stop !== undefined && pos + chunk.length >= stop) {
        // Bytes kept meanwhile: leaving the loop closes the upstream body.
        if (stop > pos) yield chunk.subarray(0, stop - pos);
        pos = stop;
        cut = true;
        break;
      }
      yield chunk;
      pos += chunk.length;
    }
    // A bounded body that ended where asked goes on with what follows; one that ended early ends this (the pump resumes).
    if (!cut && !(last !== undefined && pos === last + 1)) return;
  }
}

/** Drops the first `count` bytes: the upstream restarted from zero and those are already written. */
export async function* skip(body: AsyncIterable<Uint8Array>, count: number): AsyncGenerator<Uint8Array> {
  let left = count;
  for await (const chunk of body) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}

export interface FillBodyDeps {
  readonly kept: KeptStore;
  readonly logger: Logger;
  /** Counts bytes that crossed the WAN. */
  readonly upstreamBytes: (n: number) => void;
  /** Range fetches shared with the other workers of the host, if any. */
  readonly ranges?: RangeCoordinator;
}

/**
 * The fill's body from `offset`: what ranges kept (in this process, or before a restart) is read
 * back from disk and only the gaps are asked of the upstream; without kept ranges, one GET from
 * `offset`, as before.
 */
export async function openFillBody(target: Target, fill: BlobFill, offset: number, deps: FillBodyDeps): Promise<AsyncIterable<Uint8Array>> {
  const { client } = target.upstream!;
  const { ranges } = deps;
  const elsewhere: Elsewhere | undefined = ranges && {
    under: (from, to) => ranges.under(fill.digest, from, to),
    wait: (flight) => ranges.wait(flight),
  };
  // Asked before the map is read: a fetch that ends in between has recorded its span by then.
  const busy = elsewhere && fill.size !== undefined ? (await elsewhere.under(offset, fill.size - 1).catch(() => [])).length > 0 : false;
  const found = await deps.kept.load(fill.digest, fill.size).catch((err: Error) => {
    deps.logger.warn({ digest: fill.digest, err: err.message }, 'kept ranges unreadable; fetching the whole blob');
    return undefined;
  });
  if (found && fill.size === undefined) fill.markReady(found.size);
  const open = async (pos: number, last?: number): Promise<GapBody> => {
    if (last !== undefined) {
      const part = await getBlobRange(client, target.repository, fill.digest, pos, last);
      // A registry that ignores Range: the plain request below, from where the fill is.
      if (part) return { body: counted(part, deps.upstreamBytes), start: pos };
    }
    const blob = await getBlob(client, target.repository, fill.digest, pos);
    if (!blob) throw blobUnknown(fill.digest);
    if (pos === 0) fill.markReady(blob.size ?? fill.size);
    // Every body byte crossed the WAN, skipped ones included.
    return { body: counted(blob.body, deps.upstreamBytes), start: blob.start };
  };
  // Without kept bytes at `offset` the first request is sent now, not when the body is first
  // read: its answer gives the blob's size, which workers following this fill learn from the
  // notice sent once this returns (without it they cannot tell a cut fill from a whole one).
  // Another worker's range fetches under way with nothing kept yet: the map they will be recorded in.
  const kept = found ?? deps.kept.current(fill.digest) ?? (busy ? await deps.kept.forRanges(fill.digest, fill.size!).catch(() => undefined) : undefined);
  const first = kept ? undefined : await open(offset);
  return keptFill(
    offset,
    () => fill.size,
    () => deps.kept.current(fill.digest),
    open,
    ARRIVING_WAIT_MS,
    first,
    elsewhere,
  );
}
