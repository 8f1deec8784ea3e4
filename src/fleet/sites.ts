/** @module fleet/sites — the hub's book of sites: each site's last report and whether it is up or stale. */
import type { SiteReport } from './hub-protocol.js';

/** A site that missed this many intervals shows as stale. */
export const STALE_AFTER_INTERVALS = 3;

export interface SiteView extends SiteReport {
  readonly state: 'up' | 'stale';
  /** When the last report arrived (ISO 8601). */
  readonly lastReport: string;
  readonly firstSeen: string;
}

interface Entry {
  report: SiteReport;
  at: number;
  readonly firstSeen: number;
}

export class SiteBook {
  private readonly sites = new Map<string, Entry>();

  constructor(private readonly now: () => number) {}

  record(report: SiteReport): void {
    const at = this.now();
    const known = this.sites.get(report.name);
    if (known) {
      known.report = report;
      known.at = at;
    } else {
      this.sites.set(report.name, { report, at, firstSeen: at });
    }
  }

  names(): string[] {
    return [...this.sites.keys()].sort();
  }

  /** Undefined for a site that never reported. */
  stateOf(name: string): { state: 'up' | 'stale'; at: number } | undefined {
    const e = this.sites.get(name);
    if (!e) return undefined;
    return { state: this.now() - e.at > STALE_AFTER_INTERVALS * e.report.intervalMs ? 'stale' : 'up', at: e.at };
  }

  list(): SiteView[] {
    return this.names().map((name) => {
      const e = this.sites.get(name)!;
      return { ...e.report, state: this.stateOf(name)!.state, lastReport: new Date(e.at).toISOString(), firstSeen: new Date(e.firstSeen).toISOString() };
    });
  }
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
