/** @module app — assembles stores, upstream clients, cache and HTTP server from a config; owns their lifecycle. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BerthConfig } from './config/types.js';
import { BlobStore } from './storage/blobs.js';
import { MetadataStore } from './storage/metadata.js';
import { RegistryClient } from './upstream/client.js';
import { RegistryCache } from './cache/registry.js';
import type { Upstream } from './cache/target.js';
import { createServer } from './http/server.js';
import { reconcile } from './storage/check.js';
import { evictionLimits } from './cache/eviction.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly now: () => number;
}

export interface App {
  readonly server: Server;
  readonly cache: RegistryCache;
  /** Starts listening; resolves with the bound address (port 0 picks a free one). */
  listen(): Promise<AddressInfo>;
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
  const metadata = new MetadataStore(root, now);
  const reconciled = await reconcile(blobs, metadata);
  if (reconciled.adopted + reconciled.forgotten > 0) logger.info(reconciled, 'metadata reconciled with the files on disk');
  const upstreams: Upstream[] = config.upstreams.map((u) => ({
    config: u,
    client: new RegistryClient(u, config.upstreamTimeouts, logger.child({ upstream: u.name }), now),
  }));
  const cache = new RegistryCache({ blobs, metadata, upstreams, logger, now, limits: evictionLimits(config) });
  cache.evictor.maybeRun();
  const server = createServer({ config, cache, upstreams, logger });

  return {
    server,
    cache,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        const host = config.http.host === '' ? undefined : config.http.host;
        server.listen(config.http.port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: async (deadlineMs = 30_000) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), deadlineMs);
      await closed;
      clearTimeout(timer);
      await Promise.all(upstreams.map((u) => u.client.close().catch(() => undefined)));
      metadata.close();
    },
  };
}
