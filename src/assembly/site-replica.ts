/** @module assembly/site-replica — one of a site's replicas (`cluster:`): the shared assembly plus the site's holder records, uploads, write-behind queue, held tags, peers and tag checks. */
import type { BerthConfig, ClusterConfig } from '../config/types.js';
import { openReplica } from '../cluster/replica.js';
import { UploadForwarder } from '../http/forward.js';
import { assemble, type App, type AppDeps } from './app.js';
import type { SiteParts } from './parts.js';
import { openSiteWriteSide } from './site-writes.js';
import type { Stores } from './stores.js';

/** One process serving as one of its site's replicas; with several workers see worker.ts. */
export function createReplica(config: BerthConfig, cluster: ClusterConfig, deps: AppDeps): Promise<App> {
  return assemble(config, deps, { site: siteReplica(cluster) });
}

/** Built once the store is open: holder records follow the index, peers are a byte source beside the upstream. */
export function siteReplica(cluster: ClusterConfig): (stores: Stores, deps: AppDeps, config: BerthConfig) => SiteParts {
  return (stores, { logger, now }, config) => {
    const replica = openReplica(cluster, { logger, now, timeouts: config.upstreamTimeouts });
    const index = replica.holding(stores.index.blobIndex);
    const { repos } = stores.index;
    // A site's replicas share the write-behind queue and held tags (this replica's own while Redis is away).
    const writes = openSiteWriteSide(replica, { site: cluster.name, blobs: stores.blobs, index, repos, local: stores.push, logger, now });
    const forwarder = new UploadForwarder();
    return {
      index,
      uploads: replica.owning(stores.push.uploads, config.storage.uploadpurging.ageMs),
      writes: { queue: writes.queue, heldTags: writes.heldTags, owner: writes.owner, leaseMs: writes.leaseMs, site: writes.pushSite },
      router: replica.router,
      manifests: replica.manifests,
      serving: (cache, upstreams) => ({
        peer: { secret: cluster.secret, cache, upstreams, logger, copier: writes.copier },
        uploadOwner: (id) => replica.uploadOwner(id),
        forwarder,
      }),
      connect: (cache, lead) => writes.attach(cache, lead),
      start: () => replica.start(),
      close: async () => {
        writes.close();
        await replica.close();
        await forwarder.close();
      },
    };
  };
}
