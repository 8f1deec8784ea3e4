/** @module cache/local-fills — the in-process implementation of the fill coordination port: one fill per digest in this process. */
import type { FillClaim, FillCoordinator } from '../ports/fills.js';
import { SingleFlight } from '../util/single-flight.js';

/**
 * Followers read the filler's temp file as it grows (see cache/fill), so progress is shared
 * through the file itself: claiming costs a map lookup, following costs nothing per chunk.
 */
export class LocalFills<F extends object> implements FillCoordinator<F> {
  private readonly flights = new SingleFlight<F>();

  get size(): number {
    return this.flights.size;
  }

  claim(digest: string, start: () => F): FillClaim<F> {
    const { value, joined } = this.flights.claim(digest, start);
    return joined ? { role: 'follower', fill: value } : { role: 'filler', fill: value };
  }

  current(digest: string): F | undefined {
    return this.flights.get(digest)?.value;
  }

  digests(): string[] {
    return this.flights.keys();
  }

  finish(digest: string, fill: F): void {
    this.flights.finish(digest, fill);
  }
}
