/** @module cache/range-flights — single-flight for upstream range fetches within one process: a request whose span is already on its way waits for it instead of asking again. */
import type { FetchRange } from './lazy-range.js';

interface Flight {
  readonly start: number;
  readonly end: number;
  /** The span's bytes once all arrived; undefined when the fetch failed, was cut or fell back. */
  readonly done: Promise<Buffer | undefined>;
}

/**
 * Spans are at most FETCH_MAX_BYTES (cache/lazy-range), so keeping one in memory while it
 * arrives, for the requests that joined it, is bounded whatever the blob's size. The first
 * request streams its span as it arrives; a joiner gets it once whole.
 */
export class RangeFlights {
  private readonly flights = new Map<string, Set<Flight>>();

  async fetch(digest: string, start: number, end: number, open: FetchRange): Promise<AsyncIterable<Uint8Array> | undefined> {
    for (const f of this.flights.get(digest) ?? []) {
      if (f.start > start || f.end < end) continue;
      const bytes = await f.done;
      // The one asked first failed or was cut: ask for this span itself.
      if (!bytes) break;
      return once(bytes.subarray(start - f.start, end - f.start + 1));
    }
    let settle!: (bytes: Buffer | undefined) => void;
    const flight: Flight = { start, end, done: new Promise((r) => (settle = r)) };
    // Joinable once its reader has begun: a stream never read is never closed either (a
    // response cut before its first byte), so its end could not be waited for.
    let joinable: Set<Flight> | undefined;
    const reading = (): void => {
      joinable = this.flights.get(digest) ?? new Set<Flight>();
      joinable.add(flight);
      this.flights.set(digest, joinable);
    };
    const finish = (bytes: Buffer | undefined): void => {
      settle(bytes);
      joinable?.delete(flight);
      if (joinable?.size === 0 && this.flights.get(digest) === joinable) this.flights.delete(digest);
    };
    const body = await open(start, end);
    return body && tee(body, end - start + 1, reading, finish);
  }
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Streams `body` and keeps a copy for joiners; `finish` gets the whole span, or undefined if it stopped short. */
async function* tee(
  body: AsyncIterable<Uint8Array>,
  length: number,
  reading: () => void,
  finish: (bytes: Buffer | undefined) => void,
): AsyncGenerator<Uint8Array> {
  reading();
  const kept: Buffer[] = [];
  let got = 0;
  let whole: Buffer | undefined;
  try {
    for await (const chunk of body) {
      kept.push(Buffer.from(chunk));
      got += chunk.length;
      yield chunk;
    }
    if (got === length) whole = Buffer.concat(kept, length);
  } finally {
    finish(whole);
  }
}
