/** @module ops/history — a ring buffer of request and byte counts per interval, for the dashboard's charts. */

export interface HistoryTotals {
  readonly hit: number;
  readonly miss: number;
  readonly joined: number;
  readonly stale: number;
  readonly bytesFromCache: number;
  readonly bytesFromUpstream: number;
}

/** Counts during one interval, ending at `t` (milliseconds since the epoch). */
export interface HistoryPoint extends HistoryTotals {
  readonly t: number;
}

const ZERO: HistoryTotals = { hit: 0, miss: 0, joined: 0, stale: 0, bytesFromCache: 0, bytesFromUpstream: 0 };

export class StatsHistory {
  private readonly points: HistoryPoint[] = [];
  private last: HistoryTotals = ZERO;

  /** Default: 10 s intervals, one hour kept. */
  constructor(
    readonly intervalMs = 10_000,
    private readonly capacity = 360,
  ) {}

  /** Records the change since the previous sample; the oldest point drops out when full. */
  sample(t: number, totals: HistoryTotals): void {
    const d = (k: keyof HistoryTotals) => totals[k] - this.last[k];
    this.points.push({
      t,
      hit: d('hit'),
      miss: d('miss'),
      joined: d('joined'),
      stale: d('stale'),
      bytesFromCache: d('bytesFromCache'),
      bytesFromUpstream: d('bytesFromUpstream'),
    });
    if (this.points.length > this.capacity) this.points.shift();
    this.last = { ...totals };
  }

  toJSON(): { intervalSeconds: number; points: HistoryPoint[] } {
    return { intervalSeconds: this.intervalMs / 1000, points: [...this.points] };
  }
}
