/** @module cache/range-flights — single-flight for upstream range fetches within one process: the parts of a span already on their way are waited for, only the rest is asked of the upstream. */
import type { FetchRange } from './lazy-range.js';
import { within } from '../util/within.js';

interface Flight {
  readonly start: number;
  readonly end: number;
  /** The span's bytes once all arrived; undefined when the fetch failed, was cut or fell back. */
  readonly done: Promise<Buffer | undefined>;
  /** No longer joinable (it ended, or a joiner gave up waiting for it). */
  readonly drop: () => void;
}

/**
 * How long a request waits for another's fetch of a part before fetching the part itself: a part
 * is at most 1 MiB (cache/lazy-range), so only a stalled (or never read) fetch takes this long.
 */
export const JOIN_WAIT_MS = 10_000;

/**
 * Spans are at most FETCH_MAX_BYTES (cache/lazy-range), so keeping one in memory while it
 * arrives, for the requests that joined it, is bounded whatever the blob's size. The first
 * request streams its span as it arrives; a joiner gets it once whole.
 */
export class RangeFlights {
  private readonly flights = new Map<string, Set<Flight>>();

  /**
   * `early`: a fetch is joinable from its claim, so requests that come before the upstream
   * answered (the usual case for concurrent ones) wait for it too; a stream never read (its
   * response cut before the first byte) never ends, and a joiner gives up on it after `waitMs`.
   * Without it (the workers of a host share a table that claims every span at once, this
   * process's requests included), a fetch is joinable here once its reader has begun.
   */
  constructor(
    private readonly early = true,
    private readonly waitMs = JOIN_WAIT_MS,
  ) {}

  /**
   * Bytes [start, end]: parts already on their way are waited for, only the rest is asked of the
   * upstream (each such part joinable in turn). Resolves once the first part answered; undefined
   * when the upstream ignores Range there. A later part that cannot be had cuts the stream.
   */
  async fetch(digest: string, start: number, end: number, open: FetchRange): Promise<AsyncIterable<Uint8Array> | undefined> {
    const plan = this.plan(digest, start, end);
    const first = plan[0]!;
    let head: AsyncIterable<Uint8Array> | undefined;
    if (first.flight) {
      head = await joined(first, first.flight, this.waitMs);
      // The one asked first failed or was cut: ask for this whole span itself.
      if (!head) return this.own(digest, start, end, open);
    } else {
      head = await this.own(digest, first.from, first.to, open);
      if (!head) return undefined;
    }
    if (plan.length === 1) return head;
    return this.rest(digest, head, plan.slice(1), open);
  }

  /** The span cut into parts: those inside flights under way (joined) and the gaps between (fetched). */
  private plan(digest: string, start: number, end: number): Part[] {
    const over = [...(this.flights.get(digest) ?? [])].filter((f) => f.start <= end && f.end >= start).sort((a, b) => a.start - b.start);
    const parts: Part[] = [];
    let pos = start;
    for (const f of over) {
      if (f.end < pos) continue;
      if (f.start > pos) parts.push({ from: pos, to: f.start - 1 });
      const to = Math.min(f.end, end);
      parts.push({ flight: f, from: Math.max(pos, f.start), to });
      pos = to + 1;
      if (pos > end) break;
    }
    if (pos <= end) parts.push({ from: pos, to: end });
    return parts;
  }

  private async *rest(digest: string, head: AsyncIterable<Uint8Array>, parts: Part[], open: FetchRange): AsyncGenerator<Uint8Array> {
    yield* head;
    for (const part of parts) {
      // A gap is planned again now: a flight that began meanwhile may hold some of it.
      const body = (part.flight ? await joined(part, part.flight, this.waitMs) : undefined) ?? (await this.fetch(digest, part.from, part.to, open));
      if (!body) throw new Error(`the upstream stopped answering ranges (bytes ${part.from}-${part.to} of ${digest})`);
      yield* body;
    }
  }

  /** Asks the upstream for [start, end]; joinable by others until it arrived (see `early`). */
  private async own(digest: string, start: number, end: number, open: FetchRange): Promise<AsyncIterable<Uint8Array> | undefined> {
    let settle!: (bytes: Buffer | undefined) => void;
    const done = new Promise<Buffer | undefined>((r) => (settle = r));
    let joinable: Set<Flight> | undefined;
    const join = (): void => {
      joinable = this.flights.get(digest) ?? new Set<Flight>();
      joinable.add(flight);
      this.flights.set(digest, joinable);
    };
    const drop = (): void => {
      joinable?.delete(flight);
      if (joinable?.size === 0 && this.flights.get(digest) === joinable) this.flights.delete(digest);
    };
    const flight: Flight = { start, end, done, drop };
    if (this.early) join();
    const finish = (bytes: Buffer | undefined): void => {
      settle(bytes);
      drop();
    };
    let body: AsyncIterable<Uint8Array> | undefined;
    try {
      body = await open(start, end);
    } finally {
      if (!body) finish(undefined);
    }
    return body && tee(body, end - start + 1, this.early ? () => undefined : join, finish);
  }
}

/** A part of a requested span: inside a flight under way, or a gap to fetch. */
interface Part {
  readonly from: number;
  readonly to: number;
  readonly flight?: Flight;
}

/** The part's bytes from its flight once that is whole; undefined when it failed, was cut or takes too long (it is dropped then). */
async function joined(part: Part, flight: Flight, waitMs: number): Promise<AsyncIterable<Uint8Array> | undefined> {
  const bytes = await within(flight.done, waitMs);
  if (!bytes) flight.drop();
  return bytes && once(bytes.subarray(part.from - flight.start, part.to - flight.start + 1));
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
