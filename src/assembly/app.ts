/** @module assembly/app — the assembly every mode shares: stores, upstream clients, write side, cache, operations and HTTP built in one readable order, with what a site replica or a serving worker adds. */
import type { AddressInfo } from 'node:net';
import type { Server, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { AccessControl } from '../auth/access.js';
import type { RegistryCache } from '../cache/registry.js';
import type { BerthConfig } from '../config/types.js';
import { WorkPriority } from '../upstream/budget.js';
import { AfterQuiet } from '../util/after-quiet.js';
import { LOCAL_OWNER } from '../storage/local.js';
import { createFleet } from './fleet-hub.js';
import { openHttpSide } from './http-side.js';
import { attachTelemetry, createOperations, createTelemetry, type Operations, type QueueView } from './operations.js';
import { openPullSide, type PullSideDeps } from './pull-side.js';
import { openPushSide } from './push-side.js';
import type { GroupParts, SiteParts } from './parts.js';
import { openStores, reconcileStore, type Stores } from './stores.js';
import { checkAll, openUpstreams } from './upstream-clients.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly now: () => number;
}

export interface App {
  /** The `http.addr` listener; `servers` holds it and every `http.listeners` entry. */
  readonly server: Server;
  readonly servers: readonly Server[];
  /** This store's instance id (the Berth-Instance header). */
  readonly instance: string;
  readonly cache: RegistryCache;
  /** Metrics, warm-up jobs, image catalog and the admin API. */
  readonly ops: Operations;
  /** Starts listening; resolves with the bound address of `http.addr` (port 0 picks a free one). */
  listen(): Promise<AddressInfo>;
  /** Checks every upstream once (DNS, connect, TLS, loop, credentials, token realm), one log line per check. */
  checkUpstreams(): Promise<void>;
  /**
   * Queues a piece of start-up's one-off work: it runs once no request has been in flight for a
   * second (at the latest STARTUP_MAX_WAIT_MS after it was queued), after the pieces queued before it.
   */
  afterQuiet(piece: () => unknown): void;
  /** What start-up's work left behind is given back (a full collection, the allocators trimmed); in every serving process. */
  settle(): void;
  /** Re-reads the TLS certificate and htpasswd file (SIGHUP; also done on file change). */
  reload(reason: string): void;
  /** Stops accepting, lets transfers finish up to the deadline, then closes the stores. */
  close(deadlineMs?: number): Promise<void>;
}

/** Logged when the start-up reconciliation fails; berth serves on (from the files) and tries again at the next start. */
export const RECONCILE_FAILED = 'could not reconcile the index with the files on disk; serving goes on from the files, and the next start tries again';

/** Start-up's one-off work waits for a second with no request in flight: longer than the gaps between a lazy client's first requests. */
export const STARTUP_QUIET_MS = 1000;
/** ...and at most this long, so a process busy from its first second still does it. */
export const STARTUP_MAX_WAIT_MS = 30_000;
/** sendfile(2) saves CPU on every stored blob served: a busy process binds it after a few seconds at most. */
export const ZERO_COPY_MAX_WAIT_MS = 5_000;

/** What a mode adds: `site` for one of a site's replicas (site-replica.ts), `group` for a serving worker (worker.ts). */
export interface Mode {
  readonly group?: GroupParts;
  readonly site?: (stores: Stores, deps: AppDeps, config: BerthConfig) => SiteParts;
}

/** Each step gets what the steps before built; nothing is tied in afterwards except where a part says why. */
export async function assemble(config: BerthConfig, deps: AppDeps, mode: Mode): Promise<App> {
  const { logger, now } = deps;
  const { group } = mode;
  // The lead worker (or the only process) runs the duties one process per store must run.
  const lead = group?.lead ?? true;
  const stores = await openStores(config, deps, { prepared: group !== undefined, announce: lead, ...(group ? { slot: group.slot } : {}) });
  const site = mode.site?.(stores, deps, config);
  const index = site?.index ?? stores.index.blobIndex;
  const telemetry = createTelemetry(config, now);
  const priority = new WorkPriority();
  const upstreams = openUpstreams(config, { logger, now, telemetry, instance: stores.instance, priority, ...(group ? { budget: group.budget } : {}) });
  const writes = site?.writes ?? { queue: stores.push.queue, heldTags: stores.push.heldTags, owner: LOCAL_OWNER };
  const pushSide = openPushSide({
    config,
    blobs: stores.blobs,
    index,
    repos: stores.index.repos,
    uploads: site?.uploads ?? stores.push.uploads,
    ...writes,
    // Every claimant has its own name: a worker's start-up recovery resets only its own running jobs.
    owner: group ? group.claimant(writes.owner) : writes.owner,
    ...(group ? { uploadBound: group.uploadBound, uploadsCleaned: true } : {}),
    upstreams,
    logger,
    now,
    onDiskFull: (where, err) => stores.space.noteFull(where, err),
  });
  const protect = async (): Promise<ReadonlySet<string>> => {
    const queued = await pushSide.protect();
    const others = group?.othersInUse();
    return others ? new Set([...queued, ...others]) : queued;
  };
  const pullDeps = { config, stores, index, upstreams, telemetry, heldTags: writes.heldTags, protect, site, group, logger, now, priority };
  const { cache, fills } = openPullSide(pullDeps);
  site?.connect(cache, lead);
  attachTelemetry(telemetry, { config, index, cache, upstreams, queue: pushSide.view, ...(fills ? { following: () => fills.following } : {}) });
  // The write-behind worker starts here: everything it sends is background work for the WAN budget.
  const push = await priority.background(() => pushSide.start(cache));
  const access = new AccessControl({ config, upstreams, logger, now });
  const { ops, fleet, admin, leadAdmin } = await operate({ ...pullDeps, cache, queue: pushSide.view, priority, lead });
  const serverDeps = { config, cache, upstreams, logger, now, admin, observer: telemetry, access, push, instance: stores.instance };
  const http = openHttpSide(config, { ...serverDeps, ...site?.serving(cache, upstreams) }, access, logger);
  group?.join(upstreams, access, (reason) => http.reload(reason));
  const quiet = new AfterQuiet({ quietMs: STARTUP_QUIET_MS, maxWaitMs: STARTUP_MAX_WAIT_MS, now });
  for (const server of http.servers)
    server.on('request', (_req, res: ServerResponse) => {
      quiet.begin();
      res.once('close', () => quiet.end());
    });
  // The lead reconciles the index with the files after listening, so ready does not grow with the
  // store: serving goes by the files, never by the index alone (docs/design.md §4). Eviction,
  // which counts by the index, starts once it agrees with the disk.
  const reconciling = new AbortController();
  let reconciled: Promise<void> = Promise.resolve();
  const reconcileInBackground = () =>
    reconcileStore(stores.blobs, index, logger, reconciling.signal)
      .catch((err: Error) => logger.error({ err: err.message }, RECONCILE_FAILED))
      .then(() => {
        if (reconciling.signal.aborted) return;
        cache.maybeEvict();
        cache.startSweeps();
      });
  return {
    server: http.server,
    servers: http.servers,
    instance: stores.instance,
    cache,
    ops,
    listen: async () => {
      const bound = await http.listen();
      // After the first requests, not beside them (util/after-quiet). Loading koffi (a native
      // library) took the CPU from a just-started berth's first requests; stored blobs are copied
      // until it has bound sendfile(2), at most a few seconds.
      quiet.run(
        () =>
          stores
            .bindZeroCopy()
            .catch((err: Error) => logger.warn({ err: err.message }, 'sendfile(2) is not available: stored blobs are copied to every client')),
        ZERO_COPY_MAX_WAIT_MS,
      );
      // The index is not what serving goes by.
      if (lead) quiet.run(() => (reconciled = reconcileInBackground()));
      ops.start();
      if (lead) fleet.start();
      site?.start();
      await group?.listening(leadAdmin);
      return bound;
    },
    // Every worker checks (its /readyz answers from its own results); the lead alone logs them.
    checkUpstreams: () => checkAll(upstreams, lead ? logger : logger.child({}, { level: 'silent' })),
    afterQuiet: (piece) => quiet.run(piece),
    settle: () => ops.settle(),
    reload: (reason) => http.reload(reason),
    close: async (deadlineMs = 30_000) => {
      quiet.stop();
      reconciling.abort();
      fleet.stop();
      ops.stop();
      await http.close(deadlineMs);
      await fleet.close();
      await reconciled;
      await cache.stopEviction();
      await pushSide.close();
      await site?.close();
      await access.close();
      await Promise.all(upstreams.map((u) => u.client.close().catch(() => undefined)));
      await stores.close();
      await group?.close();
    },
  };
}

/**
 * Metrics, catalog, warm-up, the fleet hub and site agent, and the admin API: the whole group's
 * figures when several workers serve, answered by the lead (`leadAdmin`) for the others.
 */
async function operate(d: PullSideDeps & { cache: RegistryCache; queue: QueueView; priority: WorkPriority; lead: boolean }) {
  const { config, stores, group, telemetry } = d;
  const adminTelemetry = group?.telemetry(telemetry);
  const ops = createOperations({
    ...d,
    blobs: stores.blobs,
    repos: stores.index.repos,
    bundleLog: stores.index.bundles,
    indexOk: () => stores.index.ping(),
    disk: () => stores.space.report(),
    ...(adminTelemetry ? { adminTelemetry } : {}),
    schedules: d.lead,
  });
  const fleet = await createFleet({ ...d, ops, stats: () => (adminTelemetry ?? telemetry).stats() });
  const leadAdmin = fleet.wrap(ops.admin);
  const admin = group && !d.lead ? group.forwardAdmin(leadAdmin, config.hub !== undefined) : leadAdmin;
  return { ops, fleet, admin, leadAdmin };
}
