/** @module assembly/fleet-hub — builds the fleet hub (with `hub:`) and the site agent (with `site:`) in front of the admin API. */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/types.js';
import type { Upstream } from '../upstream/target.js';
import type { AdminHandler } from '../http/admin.js';
import type { Operations } from './operations.js';
import type { Hub } from '../fleet/hub.js';
import type { SiteReport } from '../fleet/hub-protocol.js';

export interface FleetDeps {
  readonly config: BerthConfig;
  readonly ops: Operations;
  readonly stats: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  readonly upstreams: readonly Upstream[];
  readonly logger: Logger;
  readonly now: () => number;
}

export interface Fleet {
  readonly hub?: Hub;
  /** The hub's endpoints in front of the admin API (they answer paths the admin API does not have). */
  wrap(admin: AdminHandler): AdminHandler;
  start(): void;
  stop(): void;
}

/** Without `hub:` or `site:` nothing of the fleet is loaded (docs/performance.md: idle memory). */
export async function createFleet(d: FleetDeps): Promise<Fleet> {
  const { config } = d;
  const { createHub } = config.hub ? await import('../fleet/hub.js') : {};
  const { SiteAgent } = config.site ? await import('../fleet/site-agent.js') : {};
  const hub =
    createHub && config.hub
      ? createHub({ token: config.hub.token, ...(config.admin ? { admin: config.admin } : {}), logger: d.logger.child({ fleet: 'hub' }), now: d.now })
      : undefined;
  const agent =
    SiteAgent && config.site
      ? new SiteAgent({ site: config.site, warm: d.ops.warm, report: () => siteReport(d), logger: d.logger.child({ fleet: 'site', site: config.site.name }) })
      : undefined;
  return {
    ...(hub ? { hub } : {}),
    wrap: (admin) => (hub ? async (req, res, url) => (await hub.handle(req, res, url)) || admin(req, res, url) : admin),
    start: () => agent?.start(),
    stop: () => agent?.stop(),
  };
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function siteReport(d: FleetDeps): Promise<SiteReport> {
  const site = d.config.site!;
  const stats = (await d.stats()) as { store?: { bytes: number; maxsize: number; blobs: number }; upstreamBytes?: Record<string, number> };
  const jobs = d.ops.warm.list().slice(0, 20);
  return {
    name: site.name,
    version: version(),
    intervalMs: site.intervalMs,
    store: { bytes: stats.store?.bytes ?? 0, limit: stats.store?.maxsize ?? 0, blobs: stats.store?.blobs ?? 0 },
    images: (await d.ops.catalog.list('', 10_000)).length,
    wanBytes: stats.upstreamBytes ?? {},
    upstreams: d.upstreams.map((u) => {
      const s = u.client.breaker.status();
      return { name: u.config.name, state: s.state, lastError: s.lastError ?? null };
    }),
    errors: jobs.flatMap((j) => j.images.filter((i) => i.error).map((i) => `${i.ref}: ${i.error}`)).slice(0, 10),
    jobs: jobs.map((j) => ({
      id: j.id,
      state: j.state,
      images: j.images.map((i) => i.ref),
      bytesFetched: j.images.reduce((n, i) => n + i.bytesFetched, 0),
      finishedAt: j.finishedAt,
    })),
  };
}
