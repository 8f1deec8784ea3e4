/** @module soak/windows — the planned disruptions of a run (berth restarts, upstream outages) as time windows, and the rule that judges a failed pull against them. */
import type { Cause } from './puller.js';

export type Disruption = 'restart' | 'outage';

interface Window {
  readonly kind: Disruption;
  /** For restarts: the signal. */
  readonly label: string | undefined;
  readonly start: number;
  end: number | undefined;
}

/**
 * After a window closes, errors of requests that overlapped it are still excused for this long:
 * a pooled connection to the process that was killed, or a fill that resumes after the outage.
 */
export const GRACE_MS: Record<Disruption, number> = { restart: 5_000, outage: 30_000 };

export class Windows {
  private readonly all: Window[] = [];
  private waiters: Array<() => void> = [];

  constructor(private readonly now: () => number) {}

  begin(kind: Disruption, label?: string): void {
    this.all.push({ kind, label, start: this.now(), end: undefined });
  }

  end(kind: Disruption): void {
    const w = [...this.all].reverse().find((x) => x.kind === kind && x.end === undefined);
    if (w) w.end = this.now();
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  isOpen(kind?: Disruption): boolean {
    return this.all.some((w) => w.end === undefined && (kind === undefined || w.kind === kind));
  }

  /** Whether a request running over [start, end] overlapped a window of `kind` (its grace included). */
  overlapped(kind: Disruption, start: number, end: number, label?: string): boolean {
    return this.all.some(
      (w) => w.kind === kind && (label === undefined || w.label === label) && w.start <= end && (w.end === undefined || w.end + GRACE_MS[kind] >= start),
    );
  }

  /** Resolves once no window is open. */
  async settled(): Promise<void> {
    while (this.isOpen()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** When the latest window of `kind` began. */
  lastStart(kind: Disruption): number {
    return [...this.all].reverse().find((w) => w.kind === kind)?.start ?? 0;
  }

  count(kind: Disruption): number {
    return this.all.filter((w) => w.kind === kind).length;
  }
}

/** What may be excused, and why; undefined means the pull failed. */
export type Excuse = 'berth-restarting' | 'upstream-down';

/**
 * The rule for a pull that did not complete:
 * - During a berth restart (from the signal until berth answers again, plus a short grace), a
 *   connection that is refused, cut or times out is what any client sees; real clients retry, so
 *   the pull is retried once berth is back, and only that retry's outcome counts. A response cut
 *   in the middle of its body is excused only for SIGKILL: SIGTERM finishes transfers in flight.
 * - During an upstream outage, content berth does not hold cannot be served: a 502/503/504 or a
 *   cut blob (a fill the outage broke) is excused and the pull retried when the upstream is back.
 *   Content berth held completely when it called the upstream down is not excused: it must be served.
 * - Everything else fails the run: a 404 or 500, a wrong digest or tag, a cut outside a window.
 */
export function excuse(windows: Windows, cause: Cause, start: number, end: number, knownCached: boolean): Excuse | undefined {
  const connection = cause === 'refused' || cause === 'cut' || cause === 'timeout';
  if (connection && windows.overlapped('restart', start, end)) return 'berth-restarting';
  if (cause === 'cut-body' && windows.overlapped('restart', start, end, 'SIGKILL')) return 'berth-restarting';
  const unavailable =
    cause === 'status-502' || cause === 'status-503' || cause === 'status-504' || cause === 'cut' || cause === 'cut-body' || cause === 'timeout';
  if (unavailable && !knownCached && windows.overlapped('outage', start, end)) return 'upstream-down';
  return undefined;
}
