/** @module workers/group-budget — a worker's share of an upstream's WAN budget, granted by the primary so `ratelimit` caps the whole process group. */
import type { ByteBudget } from '../upstream/budget.js';

export interface GroupBudgetDeps {
  /** Resolves when the primary's budget granted `n` bytes at this priority. */
  readonly ask: (n: number, background: boolean) => Promise<void>;
  /** Bytes asked for at a time, so a message carries many socket reads' worth. */
  readonly grant: number;
  /** The primary could not be asked (it is gone and this worker is stopping). */
  readonly onLost: (err: Error) => void;
}

/** About a quarter of the budget's 50 ms bucket: few messages, and little left idle in a worker that stops fetching. */
export function grantSize(rate: number | undefined): number {
  if (!rate) return 1024 * 1024;
  return Math.min(1024 * 1024, Math.max(16 * 1024, Math.floor(rate / 80)));
}

interface Share {
  /** Bytes granted to this worker and not used yet. */
  reserve: number;
  /** Takes waiting for a grant, in order; the last one's promise. */
  waiting: number;
  tail: Promise<void>;
}

/**
 * Spends bytes granted by the primary, asking for more a grant at a time. Foreground and
 * background keep separate shares, so the primary's budget orders them across every worker.
 */
export class GroupBudget implements ByteBudget {
  private readonly shares = { foreground: this.share(), background: this.share() };

  constructor(private readonly deps: GroupBudgetDeps) {}

  tryTake(n: number, background: boolean): boolean {
    const s = background ? this.shares.background : this.shares.foreground;
    if (s.waiting > 0 || s.reserve < n) return false;
    s.reserve -= n;
    return true;
  }

  take(n: number, background: boolean): Promise<void> {
    if (this.tryTake(n, background)) return Promise.resolve();
    const s = background ? this.shares.background : this.shares.foreground;
    s.waiting++;
    const taken = s.tail.then(async () => {
      try {
        if (s.reserve < n) {
          const want = Math.max(n - s.reserve, this.deps.grant);
          await this.deps.ask(want, background);
          s.reserve += want;
        }
        s.reserve -= n;
      } catch (err) {
        // Without its primary the worker is on its way out: let the bytes pass rather than hang.
        this.deps.onLost(err as Error);
      } finally {
        s.waiting--;
      }
    });
    s.tail = taken;
    return taken;
  }

  private share(): Share {
    return { reserve: 0, waiting: 0, tail: Promise.resolve() };
  }
}
