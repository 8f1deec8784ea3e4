/** @module util/after-quiet — start-up's one-off work (binding sendfile, reconciliation, the code cache, a full collection) run once no request has been in flight for a while, one piece at a time, so it does not compete with a just-started process's first requests. */
import { type SetTimer, unrefTimer } from './unref-timer.js';

export interface AfterQuietOptions {
  /** No request in flight, and none ended, for this long: the process is quiet. */
  readonly quietMs: number;
  /** A piece waits at most this long from when it was queued (unless queued with its own bound), so a process never quiet still does it. */
  readonly maxWaitMs: number;
  readonly now: () => number;
  /** Timers that keep no process alive by default: work left undone at shutdown is done at the next start. */
  readonly timer?: SetTimer;
}

interface Piece {
  readonly run: () => unknown;
  /** When it runs even if the process is not quiet. */
  readonly due: number;
}

/**
 * A lazy client's first requests come one after another with short gaps; a full collection, a
 * code-cache write or a burst of upstream checks in such a gap delays the next request (a
 * just-started berth took 1.5x as long as a running one for an eStargz lazy start, docs/performance.md).
 * Pieces run in the order queued; each waits until the process is quiet again (a piece's own
 * work is not a request), and an asynchronous piece is awaited before the next.
 */
export class AfterQuiet {
  private active = 0;
  private lastEnd: number;
  private readonly queue: Piece[] = [];
  private running = false;
  private stopped = false;
  private cancel: (() => void) | undefined;
  private readonly timer: SetTimer;

  constructor(private readonly opts: AfterQuietOptions) {
    this.lastEnd = opts.now();
    this.timer = opts.timer ?? unrefTimer;
  }

  /** A request began. */
  begin(): void {
    this.active++;
  }

  /** A request ended (its response finished or its connection closed). */
  end(): void {
    this.active = Math.max(0, this.active - 1);
    this.lastEnd = this.opts.now();
    if (this.active === 0) this.arm();
  }

  /** Queues a piece of work, to wait at most `maxWaitMs` (the default bound otherwise); each piece reports its own failures (a throw here is dropped). */
  run(piece: () => unknown, maxWaitMs = this.opts.maxWaitMs): void {
    if (this.stopped) return;
    this.queue.push({ run: piece, due: this.opts.now() + maxWaitMs });
    this.arm();
  }

  /** Pieces not yet run are dropped (the process is stopping). */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.cancel?.();
    this.cancel = undefined;
  }

  /** Pieces waiting, and whether one runs now. */
  get pending(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  private quietAt(): number {
    return this.active > 0 ? Infinity : this.lastEnd + this.opts.quietMs;
  }

  private arm(): void {
    this.cancel?.();
    this.cancel = undefined;
    const next = this.queue[0];
    if (this.running || !next) return;
    const at = Math.min(this.quietAt(), next.due);
    this.cancel = this.timer(() => this.fire(), Math.max(0, at - this.opts.now()));
  }

  private fire(): void {
    this.cancel = undefined;
    const next = this.queue[0];
    if (this.running || !next) return;
    const now = this.opts.now();
    if (now < this.quietAt() && now < next.due) return this.arm();
    this.queue.shift();
    this.running = true;
    let result: unknown;
    try {
      result = next.run();
    } catch {
      result = undefined;
    }
    const done = (): void => {
      this.running = false;
      // Through a timer even when quiet: a request that arrived meanwhile is seen first.
      if (!this.stopped) this.arm();
    };
    Promise.resolve(result).then(done, done);
  }
}
