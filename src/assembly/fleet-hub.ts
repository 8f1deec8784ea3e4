/** @module assembly/fleet-hub — builds the fleet hub (with `hub:`) and the site agent (with `site:`) in front of the admin API. */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/types.js';
import type { Upstream } from '../upstream/target.js';
import type { AdminHandler } from '../http/admin.js';
import type { Operations } from './operations.js';
import type { Hub, HubDeps } from '../fleet/hub.js';
import type { HubConfig } from '../config/fleet.js';
import type { SiteReport } from '../fleet/hub-protocol.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { RegistryCache } from '../cache/registry.js';
import { imageRouter } from './operations.js';

export interface FleetDeps {
  readonly config: BerthConfig;
  readonly ops: Operations;
  readonly stats: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  readonly upstreams: readonly Upstream[];
  readonly logger: Logger;
  readonly now: () => number;
  /** The site's blobs (the list it tells the hub) and the hub's cache (what its site bundles read). */
  readonly index: BlobIndex;
  readonly cache: RegistryCache;
  /** Where the hub's poll service time goes (ops/telemetry.ts). */
  readonly telemetry?: { hubPoll(seconds: number): void };
  /** Only the lead worker runs the hub (the others forward its paths), so one process owns hub.db. */
  readonly lead?: boolean;
}

export interface Fleet {
  readonly hub?: Hub;
  /** The hub's endpoints in front of the admin API (they answer paths the admin API does not have). */
  wrap(admin: AdminHandler): AdminHandler;
  start(): void;
  stop(): void;
  /** Writes what is left of the hub's state and closes it, once requests are done. */
  close(): Promise<void>;
}

/** Without `hub:` or `site:` nothing of the fleet is loaded (docs/performance.md: idle memory). */
export async function createFleet(d: FleetDeps): Promise<Fleet> {
  const { config } = d;
  const hubOn = config.hub !== undefined && d.lead !== false;
  const { SiteAgent } = config.site ? await import('../fleet/site-agent.js') : {};
  const agent =
    SiteAgent && config.site
      ? new SiteAgent({
          site: config.site,
          warm: d.ops.warm,
          report: () => siteReport(d),
          held: () => d.index.ownDigests(),
          logger: d.logger.child({ fleet: 'site', site: config.site.name }),
        })
      : undefined;
  const withAgent = (hub: Omit<Fleet, 'start' | 'stop'> & { start?(): void; stop?(): Promise<void> }): Fleet => ({
    ...hub,
    start: () => {
      hub.start?.();
      agent?.start();
    },
    stop: () => {
      agent?.stop();
    },
    close: async () => {
      await hub.stop?.();
      await hub.close();
    },
  });
  if (!hubOn || !config.hub) return withAgent({ wrap: (admin) => admin, close: async () => undefined });
  const [{ createHub }, { cacheSource }] = await Promise.all([import('../fleet/hub.js'), import('../cache/bundle-cache-source.js')]);
  const hubDeps = {
    ...(d.upstreams.length > 0 ? { bundleSource: cacheSource(d.cache, imageRouter(d.upstreams), 'the hub') } : {}),
    token: config.hub.token,
    ...(config.admin ? { admin: config.admin } : {}),
    logger: d.logger.child({ fleet: 'hub' }),
    now: d.now,
    admission: config.hub.admission,
    ...(d.telemetry ? { observePoll: (s: number) => d.telemetry!.hubPoll(s) } : {}),
  };
  if (config.hub.redis === undefined || config.hub.advertise === undefined) {
    const { SqliteHubState } = await import('../storage/hub-db.js');
    const hub = createHub({ ...hubDeps, state: new SqliteHubState(config.storage.rootdirectory) });
    return withAgent({
      hub,
      wrap: (admin) => async (req, res, url) => (await hub.handle(req, res, url)) || admin(req, res, url),
      close: () => hub.close(),
    });
  }
  return withAgent(await replicatedHub(config.hub.redis, config.hub.advertise, config.hub.leaseTtlMs, hubDeps, createHub));
}

/**
 * Hubs sharing one Redis (docs/fleet.md, Hub replicas): the one holding the lead lease runs the hub
 * on the state in Redis; the others check each caller's token and forward the hub's paths to it.
 */
async function replicatedHub(
  redisConfig: NonNullable<HubConfig['redis']>,
  advertise: string,
  leaseTtlMs: number,
  hubDeps: Omit<HubDeps, 'state'>,
  createHub: (deps: HubDeps) => Hub,
): Promise<Omit<Fleet, 'start' | 'stop'> & { start(): void; stop(): Promise<void> }> {
  const [{ connectRedis }, { HubLead }, { RedisHubState, HUB_KEY_PREFIX }, { hubForwarder }] = await Promise.all([
    import('../cluster/redis.js'),
    import('../cluster/hub-lead.js'),
    import('../cluster/redis-hub-state.js'),
    import('../fleet/hub-forward.js'),
  ]);
  const redis = connectRedis(redisConfig, hubDeps.logger, 'berth-hub');
  let current: Hub | undefined;
  const lead = new HubLead({
    redis,
    advertise,
    key: `${HUB_KEY_PREFIX}lead`,
    ttlMs: leaseTtlMs,
    renewMs: leaseTtlMs / 5,
    logger: hubDeps.logger,
    now: hubDeps.now,
    onLead: async () => {
      current = createHub({ ...hubDeps, state: new RedisHubState(redis, HUB_KEY_PREFIX, () => lead.fence()) });
    },
    onLost: async () => {
      const was = current;
      current = undefined;
      await was?.close();
    },
  });
  // A poll with results waits out a lead change: the lease lapses within its TTL, then a hub takes it.
  // A poll with results is answered at once all the same: its results wait in Redis for the next lead.
  const inbox = new RedisHubState(redis, HUB_KEY_PREFIX);
  const forward = hubForwarder({
    ...hubDeps,
    lead: () => lead.lead(),
    self: advertise,
    leading: () => lead.isLeading(),
    waitMs: 2 * leaseTtlMs + 1_000,
    inbox: (entry) => inbox.addToInbox(entry),
  });
  return {
    wrap: (admin) => async (req, res, url) => {
      const hub = current;
      return (hub ? await hub.handle(req, res, url) : await forward(req, res, url)) || admin(req, res, url);
    },
    start: () => lead.start(),
    stop: () => lead.stop(),
    close: async () => {
      redis.disconnect();
    },
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
