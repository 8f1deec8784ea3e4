/** @module app — the composition root of `berth serve`: chooses the port implementations and assembles stores, upstream clients, cache and HTTP server from a config; owns their lifecycle. */
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BerthConfig, Listener } from './config/types.js';
import { openDiskSpace, storeInstanceId } from './store-prep.js';
import { isDiskFull } from './oci/errors.js';
import { BlobStore } from './storage/blob-files.js';
import { loadZeroCopy, type ZeroCopy } from './storage/zero-copy.js';
import { LOCAL_OWNER, openLocalIndex, openLocalPush } from './storage/local.js';
import { InUseRecord } from './storage/in-use.js';
import { RegistryClient } from './upstream/client.js';
import { RegistryCache } from './cache/registry.js';
import type { Upstream } from './ports/target.js';
import { createServer } from './http/server.js';
import { reconcile } from './storage/check.js';
import { evictionLimits } from './cache/eviction.js';
import { openPushSide } from './cache/write-side.js';
import { AccessControl } from './auth/access.js';
import { reloadTls } from './http/tls.js';
import { watchFiles } from './config/watch.js';
import { openReplica } from './cluster/replica.js';
import { openSiteWriteSide } from './cluster/write-side.js';
import { UploadForwarder } from './http/forward.js';
import { attachTelemetry, createOperations, createTelemetry, type Operations } from './ops/wiring.js';
import { createFleet } from './fleet/wiring.js';
import { WorkPriority, budgetFor } from './upstream/budget.js';
import { readInUse } from './storage/in-use.js';
import type { WorkerChannel } from './workers/channel.js';
import { WorkerFills } from './workers/worker-fills.js';
import { GroupBudget, grantSize } from './workers/group-budget.js';
import { groupTelemetry } from './workers/group-telemetry.js';
import { forwardingAdmin, listenPrivately } from './workers/admin-forward.js';
import { workerManifests } from './workers/worker-manifests.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly now: () => number;
  /** One of several serving workers (http.workers): its channel to the primary. */
  readonly worker?: WorkerChannel;
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
  /** Re-reads the TLS certificate and htpasswd file (SIGHUP; also done on file change). */
  reload(reason: string): void;
  /** Stops accepting, lets transfers finish up to the deadline, then closes the stores. */
  close(deadlineMs?: number): Promise<void>;
}

export async function createApp(config: BerthConfig, deps: AppDeps): Promise<App> {
  const { logger, now, worker } = deps;
  // The lead worker (or the only process) runs the duties one process per store must run.
  const lead = !worker || worker.lead;
  const root = config.storage.rootdirectory;
  await mkdir(root, { recursive: true });
  const blobs = new BlobStore(root, await zeroCopyFor(config, lead ? logger : undefined));
  const { removedTemp } = await blobs.init(worker !== undefined);
  if (removedTemp > 0) logger.info({ removedTemp }, 'removed partial files left by an earlier stop');
  // Metadata writes on a full disk: the reserve (storage/disk-space) is released for them.
  const space = await openDiskSpace(config, logger, !worker);
  // The shared-state ports, chosen once, here: today the local ones (SQLite files beside the blobs).
  const index = await space.retrying(() => openLocalIndex(root, now, space), 'opening metadata.db');
  const pushStores = await space.retrying(() => openLocalPush(root, now, space), 'opening push.db');
  const { repos } = index;
  // One of a site's replicas: holder records follow the index, peers are a byte source beside the upstream.
  const replica = config.cluster ? openReplica(config.cluster, { logger, now, timeouts: config.upstreamTimeouts }) : undefined;
  const blobIndex = replica ? replica.holding(index.blobIndex) : index.blobIndex;
  if (!worker) {
    const reconciled = await reconcile(blobs, blobIndex);
    if (reconciled.adopted + reconciled.forgotten > 0) logger.info(reconciled, 'metadata reconciled with the files on disk');
  }
  const instance = await storeInstanceId(root, space, logger);
  const telemetry = createTelemetry(config, now);
  const priority = new WorkPriority();
  const upstreams: Upstream[] = config.upstreams.map((u) => {
    // In a worker the primary keeps the budget, so the cap holds for the whole group.
    const own = budgetFor(u, now);
    const budget =
      own && worker
        ? new GroupBudget({
            ask: (n, background) => worker.budget(u.name, n, background),
            grant: grantSize(u.ratelimit),
            onLost: (err) => logger.warn({ upstream: u.name, err: err.message }, 'the WAN budget could not be asked of the primary; bytes pass uncapped'),
          })
        : own;
    return {
      config: u,
      client: new RegistryClient(u, config.upstreamTimeouts, logger.child({ upstream: u.name }), now, telemetry, instance, budget && { budget, priority }),
    };
  });
  const uploadRows = replica ? replica.owning(pushStores.uploads, config.storage.uploadpurging.ageMs) : pushStores.uploads;
  const forwarder = replica ? new UploadForwarder() : undefined;
  // A site's replicas share the write-behind queue and held tags (this replica's own while Redis is away).
  const siteWrites =
    replica && config.cluster
      ? openSiteWriteSide(replica, { site: config.cluster.name, blobs, index: blobIndex, repos, local: pushStores, logger, now })
      : undefined;
  // Every claimant has its own name (leases per claimant): a worker's start-up recovery then
  // resets only its own running jobs, never a sibling worker's of the same replica.
  const claimant = (base: string) => (worker ? `${base}-w${worker.slot}` : base);
  const writeState = siteWrites
    ? { queue: siteWrites.queue, heldTags: siteWrites.heldTags, owner: claimant(siteWrites.owner), leaseMs: siteWrites.leaseMs, site: siteWrites.pushSite }
    : { queue: pushStores.queue, heldTags: pushStores.heldTags, owner: claimant(LOCAL_OWNER) };
  const pushSide = openPushSide({
    config,
    blobs,
    index: blobIndex,
    repos,
    uploads: uploadRows,
    ...writeState,
    ...(worker ? { uploadBound: worker.uploadBound(), uploadsCleaned: true } : {}),
    upstreams,
    logger,
    now,
    onDiskFull: (where, err) => space.noteFull(where, err),
  });
  // berth.lock: `berth gc` run beside this process (and the other workers) leave what it streams or fills alone.
  const inUse = new InUseRecord(root, now, process.pid, worker?.slot);
  await space
    .retrying(() => inUse.open(), 'berth.lock')
    .catch((err: unknown) => {
      // Not a reason to stay down: it is rewritten with the next change of what is in use.
      if (!isDiskFull(err)) throw err;
      logger.warn({ err: (err as Error).message }, 'disk full: berth.lock could not be written yet');
    });
  const protect = async (): Promise<ReadonlySet<string>> => {
    const queued = await pushSide.protect();
    const others = worker ? readInUse(root, undefined, process.pid)?.inUse : undefined;
    return others ? new Set([...queued, ...others]) : queued;
  };
  // Workers of one host: one upstream fill per digest among them, in front of the site's replicas.
  const workerFills = worker
    ? new WorkerFills({ channel: worker, ...(replica ? { inner: replica.router } : {}), finalPath: (d) => blobs.path(d), logger })
    : undefined;
  const router = workerFills ?? replica?.router;
  const cache = new RegistryCache({
    blobs,
    index: blobIndex,
    repos,
    upstreams,
    logger,
    now,
    limits: evictionLimits(config),
    observer: telemetry,
    protect,
    ...(worker ? { downElsewhere: async () => new Set((await worker.gather('down')).flat() as string[]) } : {}),
    heldTags: writeState.heldTags,
    onInUseChange: (digests) => inUse.changed(digests),
    ...(router ? { router } : {}),
    // Tag checks: the site's (Redis) when replicas share it, which covers workers too; else the workers'.
    ...(replica ? { manifestSite: replica.manifests } : worker ? { manifestSite: workerManifests(worker, repos) } : {}),
  });
  space.onFull(() => cache.diskFull());
  siteWrites?.attach(cache, lead);
  attachTelemetry(telemetry, {
    config,
    index: blobIndex,
    cache,
    upstreams,
    queue: pushSide.view,
    ...(workerFills ? { following: () => workerFills.following } : {}),
  });
  if (lead) cache.maybeEvict();
  // The write-behind worker starts here: everything it sends is background work for the WAN budget.
  const push = await priority.background(() => pushSide.start(cache));
  const access = new AccessControl({ config, upstreams, logger, now });
  // Several workers: the admin API and /metrics report the whole group.
  const group = worker ? groupTelemetry(telemetry, worker) : undefined;
  worker?.provide('down', () => upstreams.filter((u) => u.client.breaker.state === 'down').map((u) => u.config.name));
  if (worker) shareCounts(worker, upstreams, access);

  const ops = createOperations({
    config,
    cache,
    blobs,
    index: blobIndex,
    repos,
    indexOk: () => index.ping(),
    disk: () => space.report(),
    upstreams,
    telemetry,
    logger,
    now,
    queue: pushSide.view,
    protect,
    priority,
    ...(group ? { adminTelemetry: group } : {}),
    schedules: lead,
  });
  const fleet = createFleet({ config, ops, stats: () => (group ?? telemetry).stats(), upstreams, logger, now });
  const wrapped = fleet.wrap(ops.admin);
  const admin = worker && !lead ? forwardingAdmin(wrapped, (ms) => worker.leadAdminPort(ms), config.hub !== undefined) : wrapped;
  let privateAdmin: { port: number; close(): Promise<void> } | undefined;
  const listeners: Listener[] = [
    { host: config.http.host, port: config.http.port, ...(config.http.tls ? { tls: config.http.tls } : {}) },
    ...config.http.listeners,
  ];
  const serverDeps = {
    config,
    cache,
    upstreams,
    logger,
    now,
    admin,
    observer: telemetry,
    access,
    push,
    instance,
    ...(config.cluster && replica && forwarder
      ? {
          peer: { secret: config.cluster.secret, cache, upstreams, logger, ...(siteWrites ? { copier: siteWrites.copier } : {}) },
          uploadOwner: (id: string) => replica.uploadOwner(id),
          forwarder,
        }
      : {}),
  };
  const servers = listeners.map((l) => createServer(serverDeps, l.tls));
  const server = servers[0]!;
  const reloadCertificate = (reason: string) => {
    listeners.forEach((l, i) => {
      if (l.tls) reloadTls(servers[i] as HttpsServer, l.tls, logger, reason);
    });
  };
  const reload = (reason: string) => {
    reloadCertificate(reason);
    access.reload();
  };
  // SIGHUP reaches the primary, which tells every worker.
  if (worker) worker.onReload = () => reload('SIGHUP');
  const watchers = [
    watchFiles(
      listeners.flatMap((l) => (l.tls ? [l.tls.certificate, l.tls.key] : [])),
      () => reloadCertificate('file changed'),
      logger,
    ),
    watchFiles(access.files, () => access.reload(), logger),
  ];
  const stopWatching = () => watchers.forEach((stop) => stop());

  return {
    server,
    servers,
    instance,
    cache,
    ops,
    listen: async () => {
      const bound: AddressInfo[] = [];
      for (const [i, l] of listeners.entries()) bound.push(await listenOn(servers[i]!, l));
      ops.start();
      if (lead) fleet.start();
      replica?.start();
      if (worker) {
        if (lead) {
          privateAdmin = await listenPrivately(wrapped, logger);
          worker.note({ op: 'admin', port: privateAdmin.port });
        }
        worker.note({ op: 'listening' });
      }
      return bound[0]!;
    },
    // Every worker checks (its /readyz answers from its own results); the lead alone logs them.
    checkUpstreams: () => checkAll(upstreams, lead ? logger : logger.child({}, { level: 'silent' })),
    reload,
    close: async (deadlineMs = 30_000) => {
      stopWatching();
      fleet.stop();
      ops.stop();
      const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      // Keep-alive connections go as soon as their response is done, not at the keep-alive timeout.
      servers.forEach((s) => s.closeIdleConnections());
      const sweep = setInterval(() => servers.forEach((s) => s.closeIdleConnections()), 100);
      const timer = setTimeout(() => servers.forEach((s) => s.closeAllConnections()), deadlineMs);
      await closed;
      clearInterval(sweep);
      clearTimeout(timer);
      await cache.stopEviction();
      await privateAdmin?.close();
      await pushSide.close();
      siteWrites?.close();
      await replica?.close();
      await forwarder?.close();
      await inUse.close();
      pushStores.close();
      await access.close();
      await Promise.all(upstreams.map((u) => u.client.close().catch(() => undefined)));
      index.close();
      space.close();
      worker?.close();
    },
  };
}

/** One outage, one password guesser, seen by every worker: each counts the others' failures too. */
function shareCounts(worker: WorkerChannel, upstreams: readonly Upstream[], access: AccessControl): void {
  type Outcome = { upstream: string; event: 'failure' | 'success'; reason: string };
  for (const u of upstreams)
    u.client.breaker.onLocal = (event, reason) => worker.share('breaker', { upstream: u.config.name, event, reason } satisfies Outcome);
  worker.onShared('breaker', (data) => {
    const { upstream, event, reason } = data as Outcome;
    const b = upstreams.find((u) => u.config.name === upstream)?.client.breaker;
    if (event === 'failure') b?.failure(reason, true);
    else b?.success(true);
  });
  const logins = access.failures;
  if (!logins) return;
  type Login = { event: 'fail' | 'succeed'; address: string; user: string };
  logins.onLocal = (event, address, user) => worker.share('login', { event, address, user } satisfies Login);
  worker.onShared('login', (data) => {
    const { event, address, user } = data as Login;
    if (event === 'fail') logins.fail(address, user, true);
    else logins.succeed(address, user, true);
  });
}

function listenOn(server: Server, l: Listener): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) => {
      // Ports below 1024 need root or CAP_NET_BIND_SERVICE; the image runs as uid 1000.
      const hint =
        err.code === 'EACCES' && l.port < 1024
          ? ` (ports below 1024 need root or CAP_NET_BIND_SERVICE: listen on a high port and map ${l.port} to it, see the README)`
          : '';
      reject(Object.assign(new Error(`cannot listen on ${l.host || '*'}:${l.port}: ${err.code ?? err.message}${hint}`), { code: err.code }));
    };
    server.once('error', fail);
    server.listen(l.port, l.host === '' ? undefined : l.host, () => {
      server.off('error', fail);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** One log line per check; a failed one at error level with its fix. Never throws: berth serves its cache regardless. */
async function checkAll(upstreams: readonly Upstream[], logger: Logger): Promise<void> {
  await Promise.all(
    upstreams.map(async (u) => {
      const results = await u.client.check().catch((err: Error) => [{ check: 'connect' as const, ok: false, message: err.message, fix: 'see the message' }]);
      for (const r of results) {
        if (r.ok) logger.info({ upstream: u.config.name, check: r.check }, r.message);
        else logger.error({ upstream: u.config.name, check: r.check, fix: r.fix }, r.message);
      }
    }),
  );
}

/** sendfile(2) unless `http.sendfile: false`; the lead process says which way stored blobs go, and why when they are copied. */
async function zeroCopyFor(config: BerthConfig, logger: Logger | undefined): Promise<ZeroCopy | undefined> {
  if (!config.http.sendfile) {
    logger?.info('stored blobs are copied to plain TCP clients (http.sendfile: false)');
    return undefined;
  }
  const { zeroCopy, reason } = await loadZeroCopy();
  if (zeroCopy) logger?.info('stored blobs go to plain TCP clients by sendfile(2)');
  else logger?.warn({ reason }, 'sendfile(2) is not available: stored blobs are copied to every client');
  return zeroCopy;
}
