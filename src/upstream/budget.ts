/**
 * @module upstream/budget — the WAN budget of one upstream (`ratelimit`, `backgroundwindow`): a
 * token bucket every byte berth draws from or sends to the upstream passes, where node pulls
 * (foreground) go first and background work (warm-up, pre-heat, write-behind) takes what is left.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { DailyWindow } from '../config/fleet.js';

/**
 * Marks work as background for the budgets: whatever runs inside `background()` (and every
 * request it makes, however deep) yields to node pulls. One instance per berth.
 */
export class WorkPriority {
  /** 'background', or a test read each time it is asked (work that turns foreground once a client waits for it). */
  private readonly als = new AsyncLocalStorage<'background' | (() => boolean)>();

  background<T>(fn: () => Promise<T>): Promise<T> {
    return this.als.run('background', fn);
  }

  /**
   * Runs `fn` as background work for as long as `still()` holds, then as foreground: a whole-blob
   * fill a client's range started yields to node pulls until a client waits for the blob itself.
   * Work already background stays background.
   */
  backgroundWhile<T>(still: () => boolean, fn: () => Promise<T>): Promise<T> {
    const outer = this.current();
    return this.als.run(() => outer() || still(), fn);
  }

  isBackground(): boolean {
    return this.current()();
  }

  /** The priority of the work running here, read again at each call (a request's bytes are metered by it chunk by chunk). */
  current(): () => boolean {
    const mark = this.als.getStore();
    if (mark === undefined) return () => false;
    if (mark === 'background') return () => true;
    return mark;
  }
}

interface Waiter {
  readonly n: number;
  readonly resolve: () => void;
}

/** Foreground use this recent (ms) holds background back unless the bucket is full (foreground left some over). */
const FOREGROUND_HOLD_MS = 200;
const MINUTES_PER_DAY = 1440;

export interface BudgetOptions {
  /** Bytes per second; undefined = no cap (only the window applies). */
  readonly rate?: number;
  readonly window?: DailyWindow;
  readonly now: () => number;
}

/** What metering needs of a budget: this process's own (WanBudget), or a share of a process group's. */
export interface ByteBudget {
  /** Resolves when `n` bytes may pass. */
  take(n: number, background: boolean): Promise<void>;
  /** Grants at once when it can, without queueing. */
  tryTake(n: number, background: boolean): boolean;
}

export class WanBudget implements ByteBudget {
  private tokens: number;
  private last: number;
  private lastForeground = -Infinity;
  private readonly fg: Waiter[] = [];
  private readonly bg: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly capacity: number;
  /** Bytes granted so far, by priority (for tests and the log). */
  readonly granted = { foreground: 0, background: 0 };

  constructor(private readonly opts: BudgetOptions) {
    // About 50 ms of the rate: smooth at the link, yet chunks of a socket read fit in one grant.
    this.capacity = opts.rate ? Math.max(opts.rate / 20, 64 * 1024) : Infinity;
    this.tokens = 0;
    this.last = opts.now();
  }

  /** Resolves when `n` bytes may pass; background waits while node pulls use the budget and outside the window. */
  take(n: number, background: boolean): Promise<void> {
    if (this.tryTake(n, background)) return Promise.resolve();
    return new Promise((resolve) => {
      (background ? this.bg : this.fg).push({ n, resolve });
      this.schedule();
    });
  }

  /** Grants at once when it can, without queueing (the caller then goes on synchronously). */
  tryTake(n: number, background: boolean): boolean {
    if (background ? this.bg.length > 0 || this.fg.length > 0 : this.fg.length > 0) return false;
    return this.grant(n, background);
  }

  /** Milliseconds until background work may run (0 inside the window or without one). */
  windowWaitMs(): number {
    const w = this.opts.window;
    if (!w) return 0;
    const d = new Date(this.opts.now());
    const minute = d.getHours() * 60 + d.getMinutes() + d.getSeconds() / 60;
    const inside = w.startMin < w.endMin ? minute >= w.startMin && minute < w.endMin : minute >= w.startMin || minute < w.endMin;
    if (inside) return 0;
    const until = (w.startMin - minute + MINUTES_PER_DAY) % MINUTES_PER_DAY;
    return Math.max(1_000, until * 60_000);
  }

  private refill(): void {
    const now = this.opts.now();
    if (this.opts.rate) this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.opts.rate);
    this.last = now;
  }

  private grant(n: number, background: boolean): boolean {
    if (background && this.windowWaitMs() > 0) return false;
    if (!this.opts.rate) {
      this.count(n, background);
      return true;
    }
    this.refill();
    const now = this.opts.now();
    // With node pulls under way, background gets only what they leave over (a full bucket).
    if (background && now - this.lastForeground < FOREGROUND_HOLD_MS && this.tokens < this.capacity) return false;
    // A chunk larger than the bucket passes once the bucket is full, leaving a debt.
    if (this.tokens < Math.min(n, this.capacity)) return false;
    this.tokens -= n;
    this.count(n, background);
    return true;
  }

  private count(n: number, background: boolean): void {
    if (background) this.granted.background += n;
    else {
      this.granted.foreground += n;
      this.lastForeground = this.opts.now();
    }
  }

  /** Serves waiters in order, foreground first; sleeps until the head of the line can be served. */
  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (;;) {
      const queue = this.fg.length > 0 ? this.fg : this.bg;
      const head = queue[0];
      if (!head) return;
      const background = queue === this.bg;
      if (!this.grant(head.n, background)) break;
      queue.shift();
      head.resolve();
    }
    const background = this.fg.length === 0;
    const head = (background ? this.bg : this.fg)[0]!;
    const windowMs = background ? this.windowWaitMs() : 0;
    const needed = Math.min(head.n, this.capacity) - this.tokens;
    const tokenMs = this.opts.rate ? Math.max(1, (needed / this.opts.rate) * 1000) : 1;
    const held = background && this.opts.now() - this.lastForeground < FOREGROUND_HOLD_MS;
    const holdMs = held ? FOREGROUND_HOLD_MS / 4 : 0;
    this.timer = setTimeout(() => this.schedule(), Math.max(windowMs, tokenMs, holdMs));
    // Waiting budget never keeps berth alive on its own.
    this.timer.unref();
  }
}

/** The budget for an upstream with `ratelimit` or `backgroundwindow`, else undefined (no cap, no window). */
export function budgetFor(u: { ratelimit?: number; backgroundwindow?: DailyWindow }, now: () => number): WanBudget | undefined {
  if (u.ratelimit === undefined && u.backgroundwindow === undefined) return undefined;
  return new WanBudget({ ...(u.ratelimit !== undefined ? { rate: u.ratelimit } : {}), ...(u.backgroundwindow ? { window: u.backgroundwindow } : {}), now });
}
