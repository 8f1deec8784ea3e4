/** @module assembly/operations — builds metrics, image catalog, warm-up jobs, schedule and the admin handler from the parts a mode assembled. */
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/types.js';
import { ImageCatalog } from '../cache/images.js';
import type { RegistryCache } from '../cache/registry.js';
import type { Target, Upstream } from '../upstream/target.js';
import { WarmJobs } from '../cache/warm-up.js';
import { createAdminHandler, type AdminDeps, type AdminHandler } from '../http/admin.js';
import type { AdminAccess } from '../http/admin-guard.js';
import { resolveTarget } from '../cache/routing.js';
import { OciError } from '../oci/errors.js';
import type { ImageReference } from '../oci/image-ref.js';
import type { BlobStore } from '../storage/blob-files.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { BundleLog } from '../ports/bundle-log.js';
import type { ManifestGraph, ManifestRecords, RepositoryListings, TagIndex } from '../ports/repository-index.js';
import { checkReadiness, type ReadinessDeps, type UpstreamHealth } from '../ops/health.js';
import { WarmSchedule } from '../ops/schedule.js';
import { idleCollector } from '../ops/idle-gc.js';
import { Telemetry } from '../ops/telemetry.js';
import type { WorkPriority } from '../upstream/budget.js';
import { FileHasher } from '../util/file-hasher.js';

/** The seam for the push queue (write-behind): its depth for metrics and its entries for the API. */
export interface QueueView {
  depth(): Promise<number>;
  entries(): Promise<unknown[]>;
}

/** The metrics sink the upstream clients, cache and server report to; its live gauges attach later. */
export function createTelemetry(config: BerthConfig, now: () => number): Telemetry {
  return new Telemetry({ now, upstreamNames: config.upstreams.map((u) => u.name) });
}

export interface TelemetryWiring {
  readonly config: BerthConfig;
  readonly index: BlobIndex;
  readonly cache: RegistryCache;
  readonly upstreams: readonly Upstream[];
  readonly queue?: QueueView;
  /** Fills of this worker that follow another worker's transfer: counted by the worker that fetches. */
  readonly following?: () => number;
}

/** Wired after what it observes: the gauges read the store, cache, clients and queue built before. */
export function attachTelemetry(telemetry: Telemetry, w: TelemetryWiring): void {
  telemetry.attach({
    fillsInFlight: () => w.cache.fillsInFlight - (w.following?.() ?? 0),
    store: () => w.index.usage(),
    maxsize: w.config.storage.maxsize,
    upstreams: () => w.upstreams.map((u) => ({ name: u.config.name, up: u.client.breaker.state === 'up' })),
    queueDepth: () => w.queue?.depth() ?? 0,
  });
}

export interface OperationsDeps {
  readonly config: BerthConfig;
  readonly cache: RegistryCache;
  readonly blobs: BlobStore;
  readonly index: BlobIndex;
  readonly repos: ManifestRecords & ManifestGraph & TagIndex & RepositoryListings;
  /** The record of imported bundles (metadata.db). */
  readonly bundleLog?: BundleLog;
  /** Whether the index answers (readiness). */
  readonly indexOk: () => boolean;
  /** Room for metadata writes (readiness). */
  readonly disk?: ReadinessDeps['disk'];
  readonly upstreams: readonly Upstream[];
  readonly telemetry: Telemetry;
  readonly logger: Logger;
  readonly now: () => number;
  readonly queue?: QueueView;
  /** Content queued replications still need: the admin evict keeps it, as eviction does. */
  readonly protect?: () => Promise<ReadonlySet<string>>;
  /** Warm-up jobs run as background work for the WAN budget. */
  readonly priority?: WorkPriority;
  /** What the admin API reports: the whole process group's figures when several workers serve. */
  readonly adminTelemetry?: AdminDeps['telemetry'];
  /** Whether this process runs the warm: schedule (one worker of a group does). Default true. */
  readonly schedules?: boolean;
}

export interface Operations {
  readonly admin: AdminHandler;
  readonly catalog: ImageCatalog;
  readonly warm: WarmJobs;
  readonly schedule: WarmSchedule;
  /** After listening: history sampling and the warm: schedule. */
  start(): void;
  stop(): void;
  /** A one-off piece of work is over (the start-up reconciliation): what it left behind is given back now, not at the next idle look. */
  settle(): void;
}

export function createOperations(d: OperationsDeps): Operations {
  const resolve = imageRouter(d.upstreams);
  const catalog = new ImageCatalog({
    blobs: d.blobs,
    index: d.index,
    repos: d.repos,
    logger: d.logger,
    resolve,
    observer: d.telemetry,
    inUse: (digest) => d.cache.isInUse(digest),
    protected: d.protect,
    signatureState: (upstream, repository, digest) => d.cache.signatureState(upstream, repository, digest),
  });
  const warm = new WarmJobs({
    cache: d.cache,
    blobs: d.blobs,
    index: d.index,
    repos: d.repos,
    catalog,
    resolve,
    logger: d.logger,
    now: d.now,
    ...(d.priority ? { priority: d.priority } : {}),
  });
  const schedule = new WarmSchedule(d.config.warm, warm, d.logger);
  // Blobs of bundles imported through the admin API are hashed here; its threads start on the first one.
  const hasher = new FileHasher();
  const admin = createAdminHandler({
    access: adminAccess(d.config, d.now),
    telemetry: d.adminTelemetry ?? d.telemetry,
    readiness: () =>
      checkReadiness({
        probeDir: d.blobs.tmpDir,
        metadataOk: d.indexOk,
        ...(d.disk ? { disk: d.disk } : {}),
        upstreams: () => d.upstreams.map((u) => upstreamHealth(u)),
      }),
    upstreams: d.upstreams,
    catalog,
    warm,
    queue: async () => (await d.queue?.entries()) ?? [],
    bundles: {
      ports: { blobs: d.blobs, blobIndex: d.index, repos: d.repos },
      route: resolve,
      logger: d.logger,
      hasher,
      ...(d.bundleLog ? { log: d.bundleLog } : {}),
    },
    logger: d.logger,
  });
  // Each serving process gives back what a burst of transfers left behind once it is quiet.
  const idle = idleCollector();
  return {
    admin,
    catalog,
    warm,
    schedule,
    start: () => {
      d.telemetry.start();
      if (d.schedules !== false) schedule.start();
      idle?.start();
    },
    settle: () => idle?.collectNow(),
    stop: () => {
      idle?.stop();
      schedule.stop();
      hasher.close().catch(() => undefined);
      warm.close();
      d.telemetry.stop();
    },
  };
}

/**
 * Routes `[registry/]repository` as a pull of that image would be routed (docs/design.md §5): the
 * registry part acts as containerd's `ns`; a registry part that is an upstream's path prefix
 * routes by prefix. Docker Hub's `library/` is added as a node's client would add it.
 */
/** Breaker state plus the start-up checks, for /readyz and /api/v1/upstreams. */
export function upstreamHealth(u: Upstream): UpstreamHealth {
  const checks = u.client.checks;
  return {
    name: u.config.name,
    state: u.client.breaker.state,
    ...(checks ? { checks, problems: checks.filter((c) => !c.ok).map((c) => `${c.message}; fix: ${c.fix ?? ''}`) } : {}),
  };
}

/**
 * Routes `[registry/]repository` as a pull of that image would be routed (docs/design.md): the
 * registry part acts as containerd's `ns`; a registry part that is an upstream's path prefix
 * routes by prefix. Docker Hub's `library/` is added as a node's client would add it.
 */
export function imageRouter(upstreams: readonly Upstream[]): (ref: ImageReference) => Target {
  return (ref) => {
    let target: Target;
    try {
      target = resolveTarget(upstreams, { name: ref.repository, ns: ref.registry, host: undefined });
    } catch (err) {
      const prefixed = ref.registry && upstreams.some((u) => u.config.prefix === ref.registry);
      if (!(err instanceof OciError) || !prefixed) throw err;
      target = resolveTarget(upstreams, { name: `${ref.registry}/${ref.repository}`, ns: undefined, host: undefined });
    }
    const u = target.upstream;
    return u && !target.repository.includes('/') ? { ...target, repository: u.client.upstreamRepository(target.repository) } : target;
  };
}

/**
 * Who may use the admin API. Without client auth and admin credentials anyone may read it (as
 * anyone may pull); changing state then needs a caller on this host. Loopback trust is on by
 * default only in that case: once clients or the admin authenticate, so must loopback callers.
 */
export function adminAccess(config: BerthConfig, now: () => number): AdminAccess {
  const clientAuth = config.auth !== undefined || config.upstreams.some((u) => u.passthrough !== undefined);
  return {
    ...(config.admin ? { credentials: config.admin } : {}),
    open: config.adminOpen === true,
    openReads: !clientAuth && !config.admin,
    trustLoopback: config.adminTrustLoopback ?? (!clientAuth && !config.admin),
    now,
  };
}
