/** @module cache/shared-ranges — single-flight for upstream range fetches across the processes of a host (http.workers): bytes another worker is fetching are read from the blob's kept-ranges file once there (docs/lazy-pulling.md). */
import type { RangeCoordinator, RangePart } from '../ports/fills.js';
import type { KeptRanges } from '../storage/kept-ranges.js';
import type { FetchRange } from './lazy-range.js';
import { within } from '../util/within.js';

/**
 * How long a worker waits for another's fetch of a span before fetching it itself: a range is at
 * most 1 MiB (cache/lazy-range), so only a stalled client (or worker) makes one take this long.
 */
export const SHARED_WAIT_MS = 10_000;

/**
 * Bytes [start, end] of `digest`: parts another worker is fetching now are waited for, then read
 * from the kept-ranges file it wrote them to; the rest is fetched with `fetch` (which keeps what it
 * brings in `kept`), and the other workers are told when each such part is there. Resolves once
 * the first part answered; undefined when the upstream ignores Range there (as `fetch`).
 */
export async function sharedFetch(
  coord: RangeCoordinator,
  digest: string,
  start: number,
  end: number,
  kept: KeptRanges,
  fetch: FetchRange,
  waitMs = SHARED_WAIT_MS,
): Promise<AsyncIterable<Uint8Array> | undefined> {
  const parts = await coord.claim(digest, start, end).catch(() => undefined);
  // No primary to ask (it is going away): this worker fetches on its own.
  if (!parts || parts.length === 0) return fetch(start, end);
  const release = (from: number): void => {
    for (const p of parts.slice(from)) if (p.mine) coord.done(digest, p.flight, false);
  };
  const open = async (p: RangePart): Promise<AsyncIterable<Uint8Array> | undefined> => {
    if (!p.mine) {
      // Theirs: read back once it is in the file; fetched here if it failed or takes too long.
      if (await within(coord.wait(p.flight), waitMs)) {
        // Read whole before a byte is passed on (at most 1 MiB): a file replaced meanwhile (the
        // blob was stored and its kept ranges removed) is noticed, and the part fetched here.
        const bytes = await collect(kept.read(p.from, p.to + 1)).catch(() => undefined);
        if (bytes?.length === p.to - p.from + 1) return once(bytes);
      }
      return fetch(p.from, p.to);
    }
    const body = await fetch(p.from, p.to).catch((err: unknown) => {
      coord.done(digest, p.flight, false);
      throw err;
    });
    if (!body) coord.done(digest, p.flight, false);
    // Done once the body ended and was kept (or not): only bytes in the file are read by others.
    return body && reported(body, () => coord.done(digest, p.flight, (kept.presentEnd(p.from) ?? -1) > p.to));
  };
  let first: AsyncIterable<Uint8Array> | undefined;
  try {
    first = await open(parts[0]!);
  } finally {
    if (!first) release(1);
  }
  if (!first || parts.length === 1) return first;
  return rest(first, parts, open, release);
}

async function* rest(
  first: AsyncIterable<Uint8Array>,
  parts: readonly RangePart[],
  open: (p: RangePart) => Promise<AsyncIterable<Uint8Array> | undefined>,
  release: (from: number) => void,
): AsyncGenerator<Uint8Array> {
  let opened = 0;
  try {
    yield* first;
    for (let next = 1; next < parts.length; next++) {
      const p = parts[next]!;
      opened = next;
      const body = await open(p);
      if (!body) throw new Error(`the upstream stopped answering ranges (bytes ${p.from}-${p.to})`);
      yield* body;
    }
  } finally {
    // Parts of this worker's never opened: whoever waits for them fetches them.
    release(opened + 1);
  }
}

/** `body`, then `done` once it ended, failed or was left. */
export async function* reported(body: AsyncIterable<Uint8Array>, done: () => void): AsyncGenerator<Uint8Array> {
  try {
    yield* body;
  } finally {
    done();
  }
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}
