/** @module upstream/breaker — per-upstream circuit breaker: stop waiting on a dead link, probe until it is back. */
import type { Logger } from 'pino';

export interface BreakerOptions {
  readonly name: string;
  /** Consecutive failures that open the circuit. */
  readonly threshold: number;
  /** Pause between background probes while open. */
  readonly probeIntervalMs: number;
  /** Resolves true when the upstream answers at all. */
  readonly probe: () => Promise<boolean>;
  /** Already carries the upstream's name (a child logger), so lines do not repeat it. */
  readonly logger: Logger;
  readonly now: () => number;
}

export type BreakerState = 'up' | 'down';

/**
 * Closed ("up") while requests succeed. After `threshold` consecutive failures it opens: callers
 * fail fast and a background probe runs until the upstream answers again. Each transition is
 * logged once, so an outage is one line, not one per request.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;
  private lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Whether this process has told the others of a success yet: one that started after they opened never heard why. */
  private toldSuccess = false;
  /** When the upstream last answered (here or, as told, in another serving worker). */
  private lastSuccessAt: number | undefined;
  /** Told of this process's own outcomes that change the count (the other serving workers count them too). */
  onLocal: ((event: 'failure' | 'success', reason: string, noConnection: boolean, startedAt: number | undefined) => void) | undefined;

  constructor(private readonly opts: BreakerOptions) {}

  get state(): BreakerState {
    return this.openedAt === undefined ? 'up' : 'down';
  }

  status(): { state: BreakerState; since: number | undefined; lastError: string | undefined; consecutiveFailures: number } {
    return { state: this.state, since: this.openedAt, lastError: this.lastError, consecutiveFailures: this.failures };
  }

  /** Why requests are refused right now, or undefined while the circuit is closed. */
  refusal(): string | undefined {
    if (this.openedAt === undefined) return undefined;
    const seconds = Math.round((this.opts.now() - this.openedAt) / 1000);
    return `upstream ${this.opts.name} has been unreachable for ${seconds}s (${this.lastError ?? 'no answer'}); berth is serving from its cache and probing every ${Math.round(this.opts.probeIntervalMs / 1000)}s`;
  }

  /** `remote`: another serving worker of this store saw it (counted alike; only the worker that saw it logs the change). */
  success(remote = false): void {
    if (!remote && (this.failures > 0 || this.openedAt !== undefined || !this.toldSuccess)) {
      this.toldSuccess = true;
      this.onLocal?.('success', '', false, undefined);
    }
    this.lastSuccessAt = this.opts.now();
    this.failures = 0;
    if (this.openedAt !== undefined) this.close('a request succeeded', remote);
  }

  /**
   * `noConnection`: not even a connection could be made (refused, connect timeout, no route). That
   * is the link, not one request, so the circuit opens at once and the next caller hears 503 in
   * milliseconds instead of waiting out the connect timeout again; a probe runs at once, so a
   * one-off failure closes it again within a round trip. Answers (5xx) and cuts mid-transfer
   * still need `threshold` in a row: one bad request must not refuse everyone.
   * `startedAt`: when the failed request began. One that began before the upstream last answered
   * tells nothing new (a connect that timed out across a recovery) and only counts.
   */
  failure(reason: string, remote = false, noConnection = false, startedAt?: number): void {
    if (!remote) this.onLocal?.('failure', reason, noConnection, startedAt);
    this.failures++;
    this.lastError = reason;
    const stale = startedAt !== undefined && this.lastSuccessAt !== undefined && startedAt < this.lastSuccessAt;
    const atOnce = noConnection && !stale;
    if (this.openedAt === undefined && (atOnce || this.failures >= this.opts.threshold)) {
      this.openedAt = this.opts.now();
      this.opts.logger[remote ? 'debug' : 'error'](
        { failures: this.failures, err: reason },
        'upstream unreachable: serving from cache, failing fast for uncached content until it answers again',
      );
      // Only the worker that saw it probes at once; the others wait their interval (one probe, not N).
      this.schedule(atOnce && !remote ? 0 : this.opts.probeIntervalMs);
    }
  }

  stop(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private close(how: string, remote = false): void {
    const downMs = this.opts.now() - (this.openedAt ?? this.opts.now());
    this.openedAt = undefined;
    this.failures = 0;
    this.lastSuccessAt = this.opts.now();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.opts.logger[remote ? 'debug' : 'info']({ downMs, how }, 'upstream reachable again');
  }

  private schedule(delayMs = this.opts.probeIntervalMs): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.runProbe().catch((err: Error) => {
        this.opts.logger.warn({ err: err.message }, 'upstream probe failed');
        if (this.openedAt !== undefined) this.schedule();
      });
    }, delayMs);
    this.timer.unref();
  }

  private async runProbe(): Promise<void> {
    const ok = await this.opts.probe().catch(() => false);
    if (this.openedAt === undefined) return;
    if (ok) {
      this.onLocal?.('success', '', false, undefined);
      this.close('probe answered');
    } else {
      // A failed probe is one more failure in a row (what /api/v1/upstreams reports).
      this.failures++;
      this.schedule();
    }
  }
}
