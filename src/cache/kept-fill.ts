/** @module cache/kept-fill — the body of a fill that skips what ranges already brought: kept bytes read back from the partial file, each gap asked of the upstream and cut where kept bytes begin (docs/lazy-pulling.md). */
import type { Logger } from 'pino';
import type { KeptRanges, KeptStore } from '../storage/kept-ranges.js';
import { blobUnknown } from '../oci/error-catalogue.js';
import { getBlob } from '../upstream/registry-api.js';
import type { Target } from '../upstream/target.js';
import { counted } from './cache-observer.js';
import type { BlobFill } from './fill.js';

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
  open: (pos: number) => Promise<GapBody>,
): AsyncGenerator<Uint8Array> {
  const live = (): KeptRanges | undefined => {
    const k = kept();
    return k && !k.discarded ? k : undefined;
  };
  let pos = offset;
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
    const { body, start } = await open(pos);
    if (start !== pos) {
      yield* skip(body, pos - start);
      return;
    }
    let cut = false;
    for await (const chunk of body) {
      const next = live()?.nextStart(pos);
      if (next !== undefined && pos + chunk.length >= next) {
        // Leaving the loop closes the upstream body: the rest of this gap is kept already.
        if (next > pos) yield chunk.subarray(0, next - pos);
        pos = next;
        cut = true;
        break;
      }
      yield chunk;
      pos += chunk.length;
    }
    if (!cut) return;
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
}

/**
 * The fill's body from `offset`: what ranges kept (in this process, or before a restart) is read
 * back from disk and only the gaps are asked of the upstream; without kept ranges, one GET from
 * `offset`, as before.
 */
export async function openFillBody(target: Target, fill: BlobFill, offset: number, deps: FillBodyDeps): Promise<AsyncIterable<Uint8Array>> {
  const { client } = target.upstream!;
  const found = await deps.kept.load(fill.digest, fill.size).catch((err: Error) => {
    deps.logger.warn({ digest: fill.digest, err: err.message }, 'kept ranges unreadable; fetching the whole blob');
    return undefined;
  });
  if (found && fill.size === undefined) fill.markReady(found.size);
  const open = async (pos: number): Promise<GapBody> => {
    const blob = await getBlob(client, target.repository, fill.digest, pos);
    if (!blob) throw blobUnknown(fill.digest);
    if (pos === 0) fill.markReady(blob.size ?? fill.size);
    // Every body byte crossed the WAN, skipped ones included.
    return { body: counted(blob.body, deps.upstreamBytes), start: blob.start };
  };
  return keptFill(
    offset,
    () => fill.size,
    () => deps.kept.current(fill.digest),
    open,
  );
}
