/** @module util/single-flight — one piece of work per key at a time, shared by every caller that asks meanwhile; owned by its instance. */

/** A flight in progress: what it produces and when it started. */
export interface Flight<V> {
  readonly value: V;
  readonly since: number;
}

/**
 * Each owner (a cache, a token source, a replicator) makes its own; nothing is module-global,
 * so two instances never share or leak flights. `run` is for promise-shaped work and forgets
 * the key when the promise settles; `claim`/`finish` are for work whose value outlives its
 * start (a blob fill that followers read while it runs).
 */
export class SingleFlight<V> {
  private readonly flights = new Map<string, Flight<V>>();

  constructor(private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.flights.size;
  }

  keys(): string[] {
    return [...this.flights.keys()];
  }

  has(key: string): boolean {
    return this.flights.has(key);
  }

  get(key: string): Flight<V> | undefined {
    return this.flights.get(key);
  }

  /** The flight for `key`, started with `start` when there is none; `joined` tells which. */
  claim(key: string, start: () => V): { value: V; joined: boolean } {
    const existing = this.flights.get(key);
    if (existing) return { value: existing.value, joined: true };
    const value = start();
    this.flights.set(key, { value, since: this.now() });
    return { value, joined: false };
  }

  /** Ends the flight of `key` if it is still `value` (a newer flight for the key is left alone). */
  finish(key: string, value: V): void {
    if (this.flights.get(key)?.value === value) this.flights.delete(key);
  }
}

/** Promise-shaped single flight: concurrent `run`s of one key share one call of `work`. */
export class PromiseFlight<T> {
  private readonly inner: SingleFlight<Promise<T>>;

  constructor(now: () => number = Date.now) {
    this.inner = new SingleFlight<Promise<T>>(now);
  }

  get size(): number {
    return this.inner.size;
  }

  /** When the flight of `key` started, if one is in the air. */
  since(key: string): number | undefined {
    return this.inner.get(key)?.since;
  }

  run(key: string, work: () => Promise<T>): Promise<T> {
    return this.runJoined(key, work).promise;
  }

  /** As `run`, also telling whether this caller joined a flight already in the air. */
  runJoined(key: string, work: () => Promise<T>): { promise: Promise<T>; joined: boolean } {
    const { value, joined } = this.inner.claim(key, () => {
      const p: Promise<T> = work().finally(() => this.inner.finish(key, p));
      return p;
    });
    return { promise: value, joined };
  }
}
