/**
 * @module fleet/admission — the hub's admission control: while polls in flight or the event loop's
 * delay pass a bound, each poll answer asks its site to wait longer before the next one, so load
 * spreads out before answers slow down (and before a slow answer could look like a silent site).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { DEFAULT_HUB_INFLIGHT, DEFAULT_HUB_LOOP_DELAY_MS } from '../config/fleet.js';

export interface AdmissionLimits {
  /** Polls being answered at once above which sites are slowed. */
  readonly maxInFlight: number;
  /** Event-loop delay (p99 over the last second, ms) above which sites are slowed. */
  readonly maxLoopDelayMs: number;
}

/** `hub.admission` unless configured. */
export const DEFAULT_ADMISSION: AdmissionLimits = { maxInFlight: DEFAULT_HUB_INFLIGHT, maxLoopDelayMs: DEFAULT_HUB_LOOP_DELAY_MS };

/**
 * A slowed site waits at most this many of its intervals: under the three that make it stale
 * (fleet/sites.ts), so even a hub that restarted and forgot the stretch never thinks it silent.
 */
export const MAX_STRETCH = 2;

export class Admission {
  private inFlight = 0;

  constructor(
    private readonly limits: AdmissionLimits,
    /** The event loop's recent delay in ms. */
    private readonly loopDelayMs: () => number,
  ) {}

  /** A poll starts being answered; `done` must follow. */
  enter(): void {
    this.inFlight++;
  }

  done(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
  }

  /** How long the site should wait before its next poll, beyond its own interval; 0 when the hub has room. */
  retryAfterMs(intervalMs: number): number {
    const load = Math.max(this.inFlight / this.limits.maxInFlight, this.loopDelayMs() / this.limits.maxLoopDelayMs);
    if (load <= 1) return 0;
    return Math.round(intervalMs * Math.min(MAX_STRETCH, load));
  }
}

const RESOLUTION_MS = 20;

/** The event loop's p99 delay over the last second, measured while `stop` is not called. */
export function loopDelayMeter(): { read: () => number; stop: () => void } {
  const histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  let last = 0;
  const timer = setInterval(() => {
    // The histogram records the whole time between its ticks, the resolution included.
    last = Math.max(0, histogram.percentile(99) / 1e6 - RESOLUTION_MS);
    histogram.reset();
  }, 1_000);
  timer.unref();
  return {
    read: () => last,
    stop: () => {
      clearInterval(timer);
      histogram.disable();
    },
  };
}
