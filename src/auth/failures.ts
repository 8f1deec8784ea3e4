/** @module auth/failures — failed logins per client address and per user, with exponential backoff before the next check. */
import { tooManyRequests } from '../oci/error-catalogue.js';

export interface FailurePolicy {
  /** Failures from one address before it must wait. */
  readonly perAddress: number;
  /** Failures for one user (from any address) before addresses that failed must wait for that user. */
  readonly perUser: number;
  /** First wait; it doubles with each further failure, up to maxMs. */
  readonly baseMs: number;
  readonly maxMs: number;
  /** A quiet spell this long forgets the failures. */
  readonly forgetMs: number;
  /** Entries kept per table; the oldest go first (memory stays bounded under a flood of names). */
  readonly maxEntries: number;
  /** Checks one address may have running at once: a burst cannot fill the queue before any failure counts. */
  readonly inFlightPerAddress: number;
}

export const DEFAULT_FAILURE_POLICY: FailurePolicy = {
  perAddress: 5,
  perUser: 10,
  baseMs: 1_000,
  maxMs: 60_000,
  forgetMs: 15 * 60_000,
  maxEntries: 10_000,
  inFlightPerAddress: 2,
};

interface Entry {
  failures: number;
  last: number;
}

/**
 * Password guessing costs the guesser time, not everyone else: an address that keeps failing
 * waits (429 with Retry-After) before its next check and gets no bcrypt run meanwhile. A user
 * under attack from many addresses is protected too, but only against addresses that have
 * failed: that user, logging in from a clean address, is still checked.
 */
export class FailureLimiter {
  private readonly byAddress = new Map<string, Entry>();
  private readonly byUser = new Map<string, Entry>();
  private readonly inFlight = new Map<string, number>();
  /** Told of this process's own outcomes (the other serving workers count them too). */
  onLocal: ((event: 'fail' | 'succeed', address: string, user: string) => void) | undefined;

  constructor(
    private readonly now: () => number,
    private readonly policy: FailurePolicy = DEFAULT_FAILURE_POLICY,
  ) {}

  /** Throws 429 when this address (or this user, for an address that has failed) must still wait. */
  check(address: string, user: string): void {
    const t = this.now();
    const a = this.live(this.byAddress, address, t);
    const wait = Math.max(this.waitOf(a, this.policy.perAddress, t), a ? this.waitOf(this.live(this.byUser, user, t), this.policy.perUser, t) : 0);
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw tooManyRequests(`too many failed logins; wait ${seconds}s before trying again`, seconds);
    }
  }

  /** Claims one of the address's concurrent check slots (429 when none is free); call the result when done. */
  enter(address: string): () => void {
    const n = this.inFlight.get(address) ?? 0;
    if (n >= this.policy.inFlightPerAddress) {
      throw tooManyRequests('password checks from this address are already in progress; retry in a moment', 1);
    }
    this.inFlight.set(address, n + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.inFlight.get(address) ?? 1) - 1;
      if (left > 0) this.inFlight.set(address, left);
      else this.inFlight.delete(address);
    };
  }

  /** `remote`: another serving worker of this berth saw it. */
  fail(address: string, user: string, remote = false): void {
    if (!remote) this.onLocal?.('fail', address, user);
    const t = this.now();
    this.bump(this.byAddress, address, t);
    this.bump(this.byUser, user, t);
  }

  succeed(address: string, user: string, remote = false): void {
    if (!remote && (this.byAddress.has(address) || this.byUser.has(user))) this.onLocal?.('succeed', address, user);
    this.byAddress.delete(address);
    this.byUser.delete(user);
  }

  private waitOf(e: Entry | undefined, threshold: number, t: number): number {
    if (!e || e.failures < threshold) return 0;
    const backoff = Math.min(this.policy.maxMs, this.policy.baseMs * 2 ** (e.failures - threshold));
    return e.last + backoff - t;
  }

  private live(table: Map<string, Entry>, key: string, t: number): Entry | undefined {
    const e = table.get(key);
    if (e && t - e.last > this.policy.forgetMs) {
      table.delete(key);
      return undefined;
    }
    return e;
  }

  private bump(table: Map<string, Entry>, key: string, t: number): void {
    const e = this.live(table, key, t) ?? { failures: 0, last: t };
    e.failures++;
    e.last = t;
    // Re-inserted so the table's order is least recently failed first.
    table.delete(key);
    table.set(key, e);
    while (table.size > this.policy.maxEntries) table.delete(table.keys().next().value as string);
  }
}
