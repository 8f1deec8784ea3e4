/** @module fleet/sites — the hub's book of sites: each site's last report and whether it is up or stale. */
import type { StoredSite } from '../ports/hub-state.js';
import type { SiteReport } from './hub-protocol.js';

/** A site that missed this many intervals shows as stale. */
export const STALE_AFTER_INTERVALS = 3;

export type SiteState = 'up' | 'stale';

export interface SiteView extends SiteReport {
  readonly state: SiteState;
  /** When the last report arrived (ISO 8601). */
  readonly lastReport: string;
  readonly firstSeen: string;
}

interface Entry {
  report: SiteReport;
  /** When its last poll arrived. */
  at: number;
  /** When the hub last finished answering it: the site waits an interval from there. */
  answeredAt: number;
  /** How long the hub last told the site to wait (0: its own interval). */
  waitMs: number;
  /** Polls of this site the hub is still working on: a site waiting for its answer is not silent. */
  inFlight: number;
  /** The report as last handed to the store (JSON): an unchanged one is not written again. */
  stored: string;
  readonly firstSeen: number;
}

export interface SitePageQuery {
  readonly limit: number;
  /** Names after this one. */
  readonly after?: string;
  readonly state?: SiteState;
  readonly prefix?: string;
}

export class SiteBook {
  private readonly sites = new Map<string, Entry>();
  private sorted: string[] | undefined;
  /** Silence is counted from here at the earliest: a restarted or stalled hub does not age its sites. */
  private readonly startedAt: number;

  constructor(private readonly now: () => number) {
    this.startedAt = now();
  }

  /** Sites as a previous run of the hub last saw them. */
  restore(stored: readonly StoredSite[]): void {
    for (const s of stored) {
      const report = s.report as unknown as SiteReport;
      this.sites.set(s.name, { report, at: s.at, answeredAt: s.at, waitMs: 0, inFlight: 0, firstSeen: s.firstSeen, stored: JSON.stringify(report) });
    }
    this.sorted = undefined;
  }

  /**
   * A poll arrived at `at` (taken before any work on it); `answered` must follow once it is answered.
   * `changed` when the report differs from the one last returned so (the store needs the whole row),
   * otherwise only the time it was seen is new.
   */
  arrive(report: SiteReport, at: number): { site: StoredSite; changed: boolean } {
    const text = JSON.stringify(report);
    let e = this.sites.get(report.name);
    let changed = true;
    if (e) {
      changed = text !== e.stored;
      e.report = report;
      e.at = Math.max(e.at, at);
      e.stored = text;
    } else {
      e = { report, at, answeredAt: at, waitMs: 0, inFlight: 0, firstSeen: at, stored: text };
      this.sites.set(report.name, e);
      this.sorted = undefined;
    }
    e.inFlight++;
    return { site: { name: report.name, report: report as unknown as Record<string, unknown>, at: e.at, firstSeen: e.firstSeen }, changed };
  }

  /** `waitMs`: how long the answer told the site to wait (admission control); silence counts from its end. */
  answered(name: string, waitMs = 0): void {
    const e = this.sites.get(name);
    if (!e) return;
    e.inFlight = Math.max(0, e.inFlight - 1);
    e.answeredAt = this.now();
    e.waitMs = waitMs;
  }

  names(): readonly string[] {
    this.sorted ??= [...this.sites.keys()].sort();
    return this.sorted;
  }

  /** Undefined for a site that never reported. */
  stateOf(name: string): { state: SiteState; at: number } | undefined {
    const e = this.sites.get(name);
    if (!e) return undefined;
    const quietSince = Math.max(e.at, e.answeredAt, this.startedAt);
    // A site told to wait longer than its interval is not silent for waiting.
    const stale = e.inFlight === 0 && this.now() - quietSince > STALE_AFTER_INTERVALS * Math.max(e.report.intervalMs, e.waitMs);
    return { state: stale ? 'stale' : 'up', at: e.at };
  }

  /** One page in name order; `next` only when a later site matches too, so no link leads to an empty page. */
  page(q: SitePageQuery): { items: SiteView[]; next?: string } {
    const names = this.names();
    const items: SiteView[] = [];
    let i = q.after === undefined ? 0 : upperBound(names, q.after);
    for (; i < names.length; i++) {
      const name = names[i]!;
      if (q.prefix !== undefined && !name.startsWith(q.prefix)) {
        if (name > q.prefix) break;
        continue;
      }
      const view = this.view(name);
      if (q.state !== undefined && view.state !== q.state) continue;
      if (items.length === q.limit) return { items, next: items[items.length - 1]!.name };
      items.push(view);
    }
    return { items };
  }

  summary(): { total: number; up: number; stale: number } {
    let stale = 0;
    for (const name of this.sites.keys()) if (this.stateOf(name)!.state === 'stale') stale++;
    return { total: this.sites.size, up: this.sites.size - stale, stale };
  }

  private view(name: string): SiteView {
    const e = this.sites.get(name)!;
    return { ...e.report, state: this.stateOf(name)!.state, lastReport: new Date(e.at).toISOString(), firstSeen: new Date(e.firstSeen).toISOString() };
  }
}

/** Index of the first name greater than `key` in sorted `names`. */
function upperBound(names: readonly string[], key: string): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (names[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Site selector: comma-separated names or globs (`*` any characters), e.g. `eu-*,factory-12`; empty = every site. */
export function siteMatcher(selector: string | undefined): (name: string) => boolean {
  const parts = (selector ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length === 0 || parts.includes('*')) return () => true;
  const res = parts.map(
    (p) =>
      new RegExp(
        `^${p
          .split('*')
          .map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
          .join('.*')}$`,
      ),
  );
  return (name) => res.some((r) => r.test(name));
}
