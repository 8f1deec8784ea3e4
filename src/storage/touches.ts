/** @module storage/touches — last-access times of blobs gathered in memory and written in one transaction a second, not one write per request. */

/**
 * How long a served blob's access time may wait before it is written. Every read of access times
 * (eviction, listings) writes the waiting ones first, so only a crash loses them, and access
 * times are best effort anyway: they only order eviction.
 */
export const TOUCH_FLUSH_MS = 1000;

/**
 * Access times not yet written. Under 16 clients each blob request cost an UPDATE (a WAL write and
 * its locks) on the event loop; gathered, the same blobs are written once per flush.
 */
export class PendingTouches {
  private readonly times = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  /** `write` stores the given access times (one transaction). */
  constructor(private readonly write: (times: ReadonlyMap<string, number>) => void) {}

  note(digest: string, at: number): void {
    this.times.set(digest, at);
    // unref: a waiting write never keeps the process alive; close() writes what is left. From the
    // timer a failed write (a closed or locked database) is dropped: no request waits on it.
    this.timer ??= setTimeout(() => {
      try {
        this.flush();
      } catch {
        // best effort, as above
      }
    }, TOUCH_FLUSH_MS).unref();
  }

  /** The waiting access time of `digest`, if any. */
  get(digest: string): number | undefined {
    return this.times.get(digest);
  }

  /** A newer write of the row (a fresh store, a delete) supersedes the waiting time. */
  drop(digest: string): void {
    this.times.delete(digest);
  }

  /** Writes every waiting time now (before anything reads access times, and at close). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.times.size === 0) return;
    const times = new Map(this.times);
    this.times.clear();
    this.write(times);
  }
}
