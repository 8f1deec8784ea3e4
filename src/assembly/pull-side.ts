/** @module assembly/pull-side — builds the pull side: the cache over the store, the upstream clients and the fill routing a mode chose. */
import type { Logger } from 'pino';
import { evictionLimits } from '../cache/eviction.js';
import { RegistryCache } from '../cache/registry.js';
import type { Upstream } from '../upstream/target.js';
import type { BerthConfig } from '../config/types.js';
import type { WorkPriority } from '../upstream/budget.js';
import type { Telemetry } from '../ops/telemetry.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { HeldTags } from '../ports/held-tags.js';
import type { WorkerFills } from '../workers/worker-fills.js';
import type { GroupParts, SiteParts } from './parts.js';
import type { Stores } from './stores.js';

export interface PullSideDeps {
  readonly config: BerthConfig;
  readonly stores: Stores;
  readonly index: BlobIndex;
  readonly upstreams: readonly Upstream[];
  readonly telemetry: Telemetry;
  readonly heldTags: HeldTags;
  /** Content eviction leaves alone (queued replications, the sibling workers' transfers). */
  readonly protect: () => Promise<ReadonlySet<string>>;
  readonly site: SiteParts | undefined;
  readonly group: GroupParts | undefined;
  readonly logger: Logger;
  readonly now: () => number;
  readonly priority?: WorkPriority;
}

export function openPullSide(d: PullSideDeps): { cache: RegistryCache; fills: WorkerFills | undefined } {
  const { stores, site, group, logger } = d;
  // Workers of one host: one upstream fill per digest among them, in front of the site's replicas.
  const fills = group?.fills(stores.blobs, site?.router);
  const router = fills ?? site?.router;
  // Tag checks: the site's (Redis) when replicas share it, which covers workers too; else the workers'.
  const manifestSite = site?.manifests ?? group?.manifests(stores.index.repos);
  const cache = new RegistryCache({
    blobs: stores.blobs,
    index: d.index,
    repos: stores.index.repos,
    upstreams: d.upstreams,
    logger,
    now: d.now,
    limits: evictionLimits(d.config),
    observer: d.telemetry,
    protect: d.protect,
    heldTags: d.heldTags,
    verify: d.config.verify,
    graph: stores.index.repos,
    onInUseChange: (digests) => stores.inUse.changed(digests),
    ...(d.priority ? { priority: d.priority } : {}),
    ...(group ? { downElsewhere: group.downElsewhere } : {}),
    ...(router ? { router } : {}),
    ...(manifestSite ? { manifestSite } : {}),
  });
  stores.space.onFull(() => cache.diskFull());
  return { cache, fills };
}
