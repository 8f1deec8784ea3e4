/** @module app — the composition root of `berth serve`: chooses the port implementations and assembles stores, upstream clients, cache and HTTP server from a config; owns their lifecycle. */
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BerthConfig, Listener } from './config/types.js';
import { instanceId } from './upstream/loop.js';
import { BlobStore } from './storage/blobs.js';
import { LOCAL_OWNER, openLocalIndex, openLocalPush } from './storage/local.js';
import { InUseRecord } from './storage/in-use.js';
import { RegistryClient } from './upstream/client.js';
import { RegistryCache } from './cache/registry.js';
import type { Upstream } from './cache/target.js';
import { createServer } from './http/server.js';
import { reconcile } from './storage/check.js';
import { evictionLimits } from './cache/eviction.js';
import { openPushSide } from './cache/write-side.js';
import { AccessControl } from './auth/access.js';
import { reloadTls } from './http/tls.js';
import { watchFiles } from './config/watch.js';
import { openReplica } from './cluster/replica.js';
import { UploadForwarder } from './http/forward.js';
import { attachTelemetry, createOperations, createTelemetry, type Operations } from './ops/wiring.js';
import { createFleet } from './fleet/wiring.js';
import { WorkPriority, budgetFor } from './upstream/budget.js';

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
  /** Re-reads the TLS certificate and htpasswd file (SIGHUP; also done on file change). */
  reload(reason: string): void;
  /** Stops accepting, lets transfers finish up to the deadline, then closes the stores. */
  close(deadlineMs?: number): Promise<void>;
}

export async function createApp(config: BerthConfig, deps: AppDeps): Promise<App> {
  const { logger, now } = deps;
  const root = config.storage.rootdirectory;
  await mkdir(root, { recursive: true });
  const blobs = new BlobStore(root);
  const { removedTemp } = await blobs.init();
  if (removedTemp > 0) logger.info({ removedTemp }, 'removed partial files left by an earlier stop');
  // The shared-state ports, chosen once, here: today the local ones (SQLite files beside the blobs).
  const index = openLocalIndex(root, now);
  const pushStores = openLocalPush(root, now);
  const { repos } = index;
  // One of a site's replicas: holder records follow the index, peers are a byte source beside the upstream.
  const replica = config.cluster ? openReplica(config.cluster, { logger, now, timeouts: config.upstreamTimeouts }) : undefined;
  const blobIndex = replica ? replica.holding(index.blobIndex) : index.blobIndex;
  const reconciled = await reconcile(blobs, blobIndex);
  if (reconciled.adopted + reconciled.forgotten > 0) logger.info(reconciled, 'metadata reconciled with the files on disk');
  const instance = (await instanceId(root))!;
  const telemetry = createTelemetry(config, now);
  const priority = new WorkPriority();
  const upstreams: Upstream[] = config.upstreams.map((u) => {
    const budget = budgetFor(u, now);
    return {
      config: u,
      client: new RegistryClient(u, config.upstreamTimeouts, logger.child({ upstream: u.name }), now, telemetry, instance, budget && { budget, priority }),
    };
  });
  const uploadRows = replica ? replica.owning(pushStores.uploads, config.storage.uploadpurging.ageMs) : pushStores.uploads;
  const forwarder = replica ? new UploadForwarder() : undefined;
  const pushSide = openPushSide({ config, blobs, index: blobIndex, repos, ...pushStores, uploads: uploadRows, owner: LOCAL_OWNER, upstreams, logger, now });
  // berth.lock: `berth gc` run beside this process leaves what it streams or fills alone.
  const inUse = new InUseRecord(root, now);
  await inUse.open();
  const cache = new RegistryCache({
    blobs,
    index: blobIndex,
    repos,
    upstreams,
    logger,
    now,
    limits: evictionLimits(config),
    observer: telemetry,
    protect: () => pushSide.protect(),
    heldTags: pushStores.heldTags,
    onInUseChange: (digests) => inUse.changed(digests),
    ...(replica ? { router: replica.router, manifestSite: replica.manifests } : {}),
  });
  attachTelemetry(telemetry, { config, index: blobIndex, cache, upstreams, queue: pushSide.view });
  cache.maybeEvict();
  // The write-behind worker starts here: everything it sends is background work for the WAN budget.
  const push = await priority.background(() => pushSide.start(cache));
  const access = new AccessControl({ config, upstreams, logger, now });
  const ops = createOperations({
    config,
    cache,
    blobs,
    index: blobIndex,
    repos,
    indexOk: () => index.ping(),
    upstreams,
    telemetry,
    logger,
    now,
    queue: pushSide.view,
    protect: () => pushSide.protect(),
    priority,
  });
  const fleet = createFleet({ config, ops, stats: () => telemetry.stats(), upstreams, logger, now });
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
    admin: fleet.wrap(ops.admin),
    observer: telemetry,
    access,
    push,
    instance,
    ...(config.cluster && replica && forwarder
      ? { peer: { secret: config.cluster.secret, cache, upstreams, logger }, uploadOwner: (id: string) => replica.uploadOwner(id), forwarder }
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
      fleet.start();
      replica?.start();
      return bound[0]!;
    },
    checkUpstreams: () => checkAll(upstreams, logger),
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
      await pushSide.close();
      await replica?.close();
      await forwarder?.close();
      await inUse.close();
      pushStores.close();
      await access.close();
      await Promise.all(upstreams.map((u) => u.client.close().catch(() => undefined)));
      index.close();
    },
  };
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
