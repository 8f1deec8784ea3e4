/** @module assembly/parts — what a site replica (site-replica.ts) and a serving worker (worker.ts) add to the assembly every mode shares (app.ts). */
import type { AccessControl } from '../auth/access.js';
import type { FillRouter } from '../ports/fills.js';
import type { ManifestSite } from '../ports/manifest-site.js';
import type { RegistryCache } from '../cache/registry.js';
import type { Upstream, Target } from '../upstream/target.js';
import type { UpstreamConfig } from '../config/types.js';
import type { AdminHandler } from '../http/admin.js';
import type { ServerDeps } from '../http/server.js';
import type { Telemetry } from '../ops/telemetry.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { HeldTags } from '../ports/held-tags.js';
import type { ReplicationQueue } from '../ports/replication-queue.js';
import type { RepositoryIndex } from '../ports/repository-index.js';
import type { UploadSessions } from '../ports/upload-sessions.js';
import type { PushSite } from '../ports/push-site.js';
import type { UploadBound } from '../ports/upload-sessions.js';
import type { BlobStore } from '../storage/blob-files.js';
import type { ByteBudget, WanBudget } from '../upstream/budget.js';
import type { WorkerFills } from '../workers/worker-fills.js';
import type { groupTelemetry } from './group-telemetry.js';

/** The write side's shared state: the replication queue, held tags, and who claims jobs. */
export interface WriteState {
  readonly queue: ReplicationQueue;
  readonly heldTags: HeldTags;
  readonly owner: string;
  readonly leaseMs?: number;
  readonly site?: PushSite<Target>;
}

/** One of a site's replicas: shared holder records, uploads, queue and tags, peers as a byte source. */
export interface SiteParts {
  readonly index: BlobIndex;
  readonly uploads: UploadSessions;
  readonly writes: WriteState;
  readonly router: FillRouter;
  readonly manifests: ManifestSite;
  /** The endpoint the site's other replicas read from, and uploads forwarded to the replica holding them. */
  serving(cache: RegistryCache, upstreams: readonly Upstream[]): Pick<ServerDeps, 'peer' | 'uploadOwner' | 'forwarder'>;
  /**
   * The cache is built: second copies and peer copies store through it (they are built before
   * it, which reads the site's tags). `lead`: this process moves jobs queued while Redis was away.
   */
  connect(cache: RegistryCache, lead: boolean): void;
  /** After listening: membership in the site. */
  start(): void;
  close(): Promise<void>;
}

/** One of several serving workers of a host (http.workers), talking to their primary. */
export interface GroupParts {
  readonly lead: boolean;
  readonly slot: number;
  /** The primary keeps the budget, so the cap holds for the whole group. */
  readonly budget: (u: UpstreamConfig, own: WanBudget) => ByteBudget;
  claimant(base: string): string;
  readonly uploadBound: UploadBound;
  /** What the sibling workers stream or fill (berth.lock). */
  othersInUse(): ReadonlySet<string> | undefined;
  /** One upstream fill per digest among the workers, in front of the site's replicas when there are. */
  fills(blobs: BlobStore, inner: FillRouter | undefined): WorkerFills;
  readonly downElsewhere: () => Promise<ReadonlySet<string>>;
  manifests(repos: RepositoryIndex): ManifestSite;
  /** The whole group's figures for the admin API and /metrics. */
  telemetry(local: Telemetry): ReturnType<typeof groupTelemetry>;
  /** A worker that is not the lead answers the admin API through the lead. */
  forwardAdmin(local: AdminHandler, hub: boolean): AdminHandler;
  /** Shares breaker and login outcomes with the siblings; SIGHUP from the primary reloads. */
  join(upstreams: readonly Upstream[], access: AccessControl, reload: (reason: string) => void): void;
  /** After listening: the lead's private admin port, then the primary is told. */
  listening(admin: AdminHandler): Promise<void>;
  close(): Promise<void>;
}
