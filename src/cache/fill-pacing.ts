/** @module cache/fill-pacing — when a whole-blob fill a client's range started may use the link: after the blob's ranges have been quiet a while, and not while a client's range fetches are on their way (docs/lazy-pulling.md). */
import type { SetTimer } from '../util/unref-timer.js';

/**
 * The longest a background fill waits for one range fetch to end: the longest range fetched is
 * 1 MiB, and a fetch whose client stopped reading must not hold the fill back for good.
 */
export const PAUSE_MAX_MS = 5000;

/**
 * Defers a start per key until no ranged request of that key has been running for `quietMs`:
 * `enter` when a ranged request begins, `leave` when it ends (the last one leaving arms the
 * timer), `now` starts at once (a client reads the whole blob), `forget` drops the key.
 */
export class QuietStart {
  private readonly keys = new Map<string, { active: number; cancel?: () => void; start?: () => void }>();

  constructor(
    private readonly quietMs: number,
    private readonly timer: SetTimer,
  ) {}

  enter(key: string): void {
    const k = this.keys.get(key) ?? { active: 0 };
    k.active++;
    k.cancel?.();
    k.cancel = undefined;
    this.keys.set(key, k);
  }

  /** A ranged request of `key` ended; `start` runs once `key` stays quiet for `quietMs` (this upstream's `rangequiet`; the default otherwise). */
  leave(key: string, start: () => void, quietMs = this.quietMs): void {
    const k = this.keys.get(key);
    if (!k) return start();
    k.active = Math.max(0, k.active - 1);
    k.start = start;
    if (k.active > 0) return;
    k.cancel?.();
    k.cancel = this.timer(() => this.now(key), quietMs);
  }

  /** Starts what waits for `key` now. */
  now(key: string): void {
    const k = this.keys.get(key);
    if (!k) return;
    this.keys.delete(key);
    k.cancel?.();
    k.start?.();
  }

  forget(key: string): void {
    this.keys.get(key)?.cancel?.();
    this.keys.delete(key);
  }

  /** Keys with a deferred start or a ranged request running (for tests and the in-use view). */
  get size(): number {
    return this.keys.size;
  }
}

/**
 * Client range fetches on their way, per upstream: a background fill of that upstream reads no
 * further while one is (the upstream's sender then slows down: TCP backpressure), so the
 * client's bytes are not queued behind bytes nobody waits for yet.
 */
export class RangePacer {
  private readonly active = new Map<string, Map<symbol, number>>();
  private waiters: Array<() => void> = [];

  constructor(
    private readonly now: () => number,
    private readonly timer: SetTimer,
    private readonly maxMs = PAUSE_MAX_MS,
  ) {}

  /** A range fetch of `key` begins; the function returned ends it (idempotent). */
  begin(key: string): () => void {
    const token = Symbol('range');
    const flights = this.active.get(key) ?? new Map<symbol, number>();
    flights.set(token, this.now());
    this.active.set(key, flights);
    return () => {
      if (!flights.delete(token)) return;
      if (flights.size === 0 && this.active.get(key) === flights) this.active.delete(key);
      this.wake();
    };
  }

  /** How long until every fetch of `key` begun under maxMs ago is over at the latest; 0 when none runs. */
  private busyFor(key: string): number {
    const flights = this.active.get(key);
    if (!flights) return 0;
    const now = this.now();
    let longest = 0;
    for (const [token, began] of flights) {
      const left = began + this.maxMs - now;
      // Past maxMs: a fetch whose reader went away without ending it; no longer waited for.
      if (left <= 0) flights.delete(token);
      else longest = Math.max(longest, left);
    }
    if (flights.size === 0) this.active.delete(key);
    return longest;
  }

  busy(key: string): boolean {
    return this.busyFor(key) > 0;
  }

  /** Resolves once no range fetch of `key` runs (or those running have run maxMs). */
  async idle(key: string): Promise<void> {
    for (let left = this.busyFor(key); left > 0; left = this.busyFor(key)) {
      let cancel: () => void = () => undefined;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        cancel = this.timer(resolve, left);
      });
      cancel();
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** `body`, read no further while `hold()` says so: before each next chunk, `wait()` is awaited. */
export async function* paced(body: AsyncIterable<Uint8Array>, hold: () => boolean, wait: () => Promise<void>): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    yield chunk;
    if (hold()) await wait();
  }
}

/**
 * Clients reading a fill's whole blob, per fill: a fill a client's range started is background
 * work while it has none (nobody waits for it), foreground while it has one, and background
 * again once the last has left.
 */
export class WholeReaders<F extends object> {
  private readonly count = new WeakMap<F, number>();

  /** A client begins reading `fill`; the function returned says it left (idempotent). */
  join(fill: F): () => void {
    this.count.set(fill, (this.count.get(fill) ?? 0) + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const n = (this.count.get(fill) ?? 1) - 1;
      if (n > 0) this.count.set(fill, n);
      else this.count.delete(fill);
    };
  }

  /** Whether a client reads `fill` now. */
  has(fill: F): boolean {
    return (this.count.get(fill) ?? 0) > 0;
  }
}
