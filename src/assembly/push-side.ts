/** @module assembly/push-side — builds the write side (uploads, replication worker, push service) over the queue and held tags a mode chose, and owns its lifecycle. */
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/types.js';
import type { BlobStore } from '../storage/blob-files.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { HeldTags } from '../ports/held-tags.js';
import type { ReplicationQueue } from '../ports/replication-queue.js';
import type { ManifestRecords, RepositoryLinks, TagIndex } from '../ports/repository-index.js';
import type { UploadSessions } from '../ports/upload-sessions.js';
import { PushService } from '../push/push-policy.js';
import type { PushSite } from '../ports/push-site.js';
import type { RegistryCache } from '../cache/registry.js';
import { Replicator, ReplicationWorker } from '../push/replication.js';
import type { Upstream, Target } from '../upstream/target.js';
import { UploadManager } from '../push/uploads.js';
import type { UploadBound } from '../ports/upload-sessions.js';

export interface PushSideDeps {
  readonly config: BerthConfig;
  readonly blobs: BlobStore;
  readonly index: BlobIndex;
  readonly repos: RepositoryLinks & ManifestRecords & TagIndex;
  /** The write side's shared state: replication queue, held tags, upload sessions. */
  readonly queue: ReplicationQueue;
  readonly heldTags: HeldTags;
  readonly uploads: UploadSessions;
  /** A serving worker: the primary cleaned up abandoned uploads before the workers started. */
  readonly uploadsCleaned?: boolean;
  /** The per-client count of open uploads, when not this process's own (several workers). */
  readonly uploadBound?: UploadBound;
  /** Who this process claims queue jobs as. */
  readonly owner: string;
  /** How long a claim holds unless renewed (default: replication's JOB_LEASE_MS). */
  readonly leaseMs?: number;
  /** One of a site's replicas: second copies of pushes, content other replicas took. */
  readonly site?: PushSite<Target>;
  readonly upstreams: readonly Upstream[];
  readonly logger: Logger;
  readonly now: () => number;
  /** Told when an upload met a full disk. */
  readonly onDiskFull?: (where: string, err: unknown) => void;
}

/** One queued replication as the admin API (`GET /api/v1/queue`) and the dashboard show it. */
export interface QueueEntry {
  readonly id: number;
  readonly upstream: string;
  readonly repository: string;
  readonly kind: 'blob' | 'manifest' | 'tag';
  readonly digest: string;
  readonly tag: string | null;
  readonly state: 'pending' | 'running' | 'failed';
  readonly attempts: number;
  /** Attempts the upstream refused (4xx); the job fails for good at the policy's limit of these. */
  readonly refusals: number;
  readonly ageSeconds: number;
  /** Seconds until the next attempt (0: due, or waiting for the upstream to answer). */
  readonly nextAttemptSeconds: number;
  /** Ids of the jobs this one waits for. */
  readonly waitingFor: number[];
  readonly lastError: string | null;
}

export interface PushSide {
  /** The queue for metrics (depth) and the admin API (entries). */
  readonly view: { depth(): Promise<number>; entries(): Promise<QueueEntry[]> };
  /** Content queued replications still need: never evicted (read once per eviction pass). */
  protect(): Promise<ReadonlySet<string>>;
  /** Cleans up abandoned uploads, starts the queue worker, and returns the service the HTTP layer uses. */
  start(cache: RegistryCache): Promise<PushService>;
  close(): Promise<void>;
}

export function openPushSide(deps: PushSideDeps): PushSide {
  const { config, blobs, index, repos, queue, heldTags, upstreams, logger, now, owner, site } = deps;
  const replicator = new Replicator({ blobs, repos, logger, ...(site ? { site } : {}) });
  const worker = new ReplicationWorker({ queue, owner, replicator, upstreams, logger, now, ...(deps.leaseMs !== undefined ? { leaseMs: deps.leaseMs } : {}) });
  const uploads = new UploadManager({
    blobs,
    rows: deps.uploads,
    logger,
    now,
    purging: config.storage.uploadpurging,
    ...(deps.uploadBound ? { bound: deps.uploadBound } : {}),
    ...(deps.onDiskFull ? { onDiskFull: deps.onDiskFull } : {}),
  });
  let started = false;
  return {
    view: {
      depth: async () => {
        const c = await queue.counts();
        return c.pending + c.running + c.failed;
      },
      entries: async () =>
        (await queue.list()).map((j) => ({
          id: j.id,
          upstream: j.upstream,
          repository: j.repository,
          kind: j.kind,
          digest: j.digest,
          tag: j.tag,
          state: j.state,
          attempts: j.attempts,
          refusals: j.refusals,
          ageSeconds: Math.max(0, Math.round((now() - j.createdAt) / 1000)),
          nextAttemptSeconds: Math.max(0, Math.round((j.nextAttemptAt - now()) / 1000)),
          waitingFor: j.waitingFor,
          lastError: j.lastError,
        })),
    },
    protect: () => queue.needed(),
    start: async (cache) => {
      await uploads.start(!deps.uploadsCleaned);
      await worker.start();
      started = true;
      return new PushService({
        blobs,
        index,
        repos,
        cache,
        queue,
        heldTags,
        uploads,
        replicator,
        worker,
        logger,
        deleteEnabled: config.storage.deleteEnabled,
        ...(site ? { site } : {}),
      });
    },
    close: async () => {
      if (started) await Promise.all([worker.stop(), uploads.stop()]);
    },
  };
}
