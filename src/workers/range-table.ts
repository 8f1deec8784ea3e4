/** @module workers/range-table — the primary's record of upstream range fetches across workers: a span another worker is fetching is waited for, only the rest is fetched (docs/lazy-pulling.md). */
import type { RangePart } from '../ports/fills.js';

/** A fetch not reported done after this long (its worker stalled or lost the message) is no longer waited for. */
export const RANGE_FLIGHT_MS = 30_000;

/** What the primary tells a worker waiting for another worker's range fetch. */
export interface RangeNotice {
  readonly worker: number;
  readonly flight: number;
  /** The bytes are in the blob's kept-ranges file. */
  readonly ok: boolean;
}

interface Flight {
  readonly id: number;
  readonly owner: number;
  readonly start: number;
  readonly end: number;
  readonly since: number;
  readonly waiters: Set<number>;
}

/**
 * Flights per digest, changed by two messages per fetch (claim, done), never per chunk: the
 * bytes travel through the blob's kept-ranges file, which every worker of the host shares.
 */
export class RangeTable {
  private nextId = 1;
  private readonly flights = new Map<string, Flight[]>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The digest's fetches under way, less those older than RANGE_FLIGHT_MS (no longer waited for). */
  private live(digest: string, now: number): Flight[] {
    return (this.flights.get(digest) ?? []).filter((f) => now - f.since < RANGE_FLIGHT_MS);
  }

  /**
   * [start, end] cut into parts: those inside another worker's fetch under way (`mine: false`,
   * this worker is told when it ends) and the rest, now this worker's to fetch (`mine: true`).
   */
  claim(worker: number, digest: string, start: number, end: number): RangePart[] {
    const now = this.now();
    const live = this.live(digest, now);
    // The worker's own fetches too: its requests arrive at once, before any of them reads (cache/range-flights joins only those).
    // A request waits only for fetches claimed before its own, which never wait for its: no cycle.
    const over = overlapping(live, start, end);
    const parts: RangePart[] = [];
    const own = (from: number, to: number): void => {
      const f: Flight = { id: this.nextId++, owner: worker, start: from, end: to, since: now, waiters: new Set() };
      live.push(f);
      parts.push({ from, to, flight: f.id, mine: true });
    };
    let pos = start;
    for (const f of over) {
      if (f.end < pos) continue;
      if (f.start > pos) own(pos, f.start - 1);
      const to = Math.min(f.end, end);
      f.waiters.add(worker);
      parts.push({ from: Math.max(pos, f.start), to, flight: f.id, mine: false });
      pos = to + 1;
      if (pos > end) break;
    }
    if (pos <= end) own(pos, end);
    this.flights.set(digest, live);
    return parts;
  }

  /** The fetches under way overlapping [start, end] (any worker's), by start; `worker` is told when each ends. */
  under(worker: number, digest: string, start: number, end: number): RangePart[] {
    return overlapping(this.live(digest, this.now()), start, end).map((f) => {
      f.waiters.add(worker);
      return { from: f.start, to: f.end, flight: f.id, mine: f.owner === worker };
    });
  }

  /** A worker's fetch ended; its waiters are told whether the bytes are there to read. */
  done(worker: number, digest: string, flight: number, ok: boolean): RangeNotice[] {
    const list = this.flights.get(digest) ?? [];
    const f = list.find((x) => x.id === flight && x.owner === worker);
    if (!f) return [];
    this.drop(digest, f);
    return [...f.waiters].map((w) => ({ worker: w, flight, ok }));
  }

  /** A worker died: its fetches end, unsuccessfully, for those waiting on them. */
  gone(worker: number): RangeNotice[] {
    const notices: RangeNotice[] = [];
    for (const [digest, list] of [...this.flights]) {
      for (const f of list) {
        f.waiters.delete(worker);
        if (f.owner !== worker) continue;
        this.drop(digest, f);
        notices.push(...[...f.waiters].map((w) => ({ worker: w, flight: f.id, ok: false })));
      }
    }
    return notices;
  }

  /** Digests with fetches under way. */
  get size(): number {
    return this.flights.size;
  }

  private drop(digest: string, f: Flight): void {
    const rest = (this.flights.get(digest) ?? []).filter((x) => x !== f);
    if (rest.length > 0) this.flights.set(digest, rest);
    else this.flights.delete(digest);
  }
}

/** The flights overlapping [start, end], by start. */
function overlapping(flights: Flight[], start: number, end: number): Flight[] {
  return flights.filter((f) => f.start <= end && f.end >= start).sort((a, b) => a.start - b.start);
}
