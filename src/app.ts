/** @module app — assembles stores, upstream clients, cache and HTTP server from a config; owns their lifecycle. */
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BerthConfig } from './config/types.js';
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

export interface AppDeps {
  readonly logger: Logger;
  readonly now: () => number;
}

export interface App {
  readonly server: Server;
  readonly cache: RegistryCache;
  /** Metrics, warm-up jobs, image catalog and the admin API. */
  readonly ops: Operations;
  /** Starts listening; resolves with the bound address (port 0 picks a free one). */
  listen(): Promise<AddressInfo>;
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
  const telemetry = createTelemetry(config, now);
  const upstreams: Upstream[] = config.upstreams.map((u) => ({
    config: u,
    client: new RegistryClient(u, config.upstreamTimeouts, logger.child({ upstream: u.name }), now, telemetry),
  }));
  const uploadRows = replica ? replica.owning(pushStores.uploads, config.storage.uploadpurging.ageMs) : pushStores.uploads;
  const forwarder = replica ? new UploadForwarder() : undefined;
  const pushSide = openPushSide({ config, blobs, index: blobIndex, repos, ...pushStores, uploads: uploadRows, owner: LOCAL_OWNER, upstreams, logger, now });
  // berth.lock: `berth gc` run beside this process leaves what it streams or fills alone.
  const inUse = new InUseRecord(root, now);
  await inUse.open();
  const cache = new RegistryCache({
    blobs, index: blobIndex, repos, upstreams, logger, now, limits: evictionLimits(config), observer: telemetry,
    protect: () => pushSide.protect(), heldTags: pushStores.heldTags, onInUseChange: (digests) => inUse.changed(digests),
    ...(replica ? { router: replica.router, manifestSite: replica.manifests } : {}),
  });
  attachTelemetry(telemetry, { config, index: blobIndex, cache, upstreams, queue: pushSide.view });
  cache.maybeEvict();
  const push = await pushSide.start(cache);
  const access = new AccessControl({ config, upstreams, logger, now });
  const ops = createOperations({
    config, cache, blobs, index: blobIndex, repos, indexOk: () => index.ping(), upstreams, telemetry, logger, now, queue: pushSide.view, protect: () => pushSide.protect(),
  });
  const server = createServer({ config, cache, upstreams, logger, admin: ops.admin, observer: telemetry, access, push, referrers: { blobs, repos, logger },
    ...(config.cluster && replica && forwarder
      ? { peer: { secret: config.cluster.secret, cache, upstreams, logger }, uploadOwner: (id: string) => replica.uploadOwner(id), forwarder }
      : {}),
  });
  const tls = config.http.tls;
  const reloadCertificate = (reason: string) => {
    if (tls) reloadTls(server as HttpsServer, tls, logger, reason);
  };
  const reload = (reason: string) => {
    reloadCertificate(reason);
    access.reload();
  };
  const watchers = [
    watchFiles(tls ? [tls.certificate, tls.key] : [], () => reloadCertificate('file changed'), logger),
    watchFiles(access.files, () => access.reload(), logger),
  ];
  const stopWatching = () => watchers.forEach((stop) => stop());

  return {
    server,
    cache,
    ops,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        const host = config.http.host === '' ? undefined : config.http.host;
        server.listen(config.http.port, host, () => {
          server.off('error', reject);
          ops.start();
          replica?.start();
          resolve(server.address() as AddressInfo);
        });
      }),
    reload,
    close: async (deadlineMs = 30_000) => {
      stopWatching();
      ops.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections go as soon as their response is done, not at the keep-alive timeout.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      const timer = setTimeout(() => server.closeAllConnections(), deadlineMs);
      await closed;
      clearInterval(sweep);
      clearTimeout(timer);
      await pushSide.close();
      await replica?.close();
      await forwarder?.close();
      await inUse.close();
      pushStores.close();
      await Promise.all(upstreams.map((u) => u.client.close().catch(() => undefined)));
      index.close();
    },
  };
}
