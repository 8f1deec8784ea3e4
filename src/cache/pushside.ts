/** @module cache/pushside — assembles the write side (push.db, uploads, replication worker, push service) and owns its lifecycle. */
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/types.js';
import type { BlobStore } from '../storage/blobs.js';
import type { MetadataStore } from '../storage/metadata.js';
import { openPushDatabase, QueueStore, UploadRows } from '../storage/queue.js';
import { PushService } from './push.js';
import type { RegistryCache } from './registry.js';
import { Replicator, ReplicationWorker } from './replication.js';
import type { Upstream } from './target.js';
import { UploadManager } from './uploads.js';

export interface PushSideDeps {
  readonly config: BerthConfig;
  readonly blobs: BlobStore;
  readonly metadata: MetadataStore;
  readonly upstreams: readonly Upstream[];
  readonly logger: Logger;
  readonly now: () => number;
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
  readonly ageSeconds: number;
  /** Seconds until the next attempt (0: due, or waiting for the upstream to answer). */
  readonly nextAttemptSeconds: number;
  /** Ids of the jobs this one waits for. */
  readonly waitingFor: number[];
  readonly lastError: string | null;
}

export interface PushSide {
  readonly queue: QueueStore;
  /** The queue for metrics (depth) and the admin API (entries). */
  readonly view: { depth(): number; entries(): QueueEntry[] };
  /** Content a queued replication still needs: never evicted. */
  protect(digest: string): boolean;
  /** Cleans up abandoned uploads, starts the queue worker, and returns the service the HTTP layer uses. */
  start(cache: RegistryCache): Promise<PushService>;
  close(): Promise<void>;
}

export function openPushSide(deps: PushSideDeps): PushSide {
  const { config, blobs, metadata, upstreams, logger, now } = deps;
  const db = openPushDatabase(config.storage.rootdirectory);
  const queue = new QueueStore(db, now);
  const replicator = new Replicator({ blobs, metadata, logger });
  const worker = new ReplicationWorker({ queue, replicator, upstreams, logger, now });
  const uploads = new UploadManager({ blobs, rows: new UploadRows(db, now), logger, now, purging: config.storage.uploadpurging });
  let started = false;
  return {
    queue,
    view: {
      depth: () => {
        const c = queue.counts();
        return c.pending + c.running + c.failed;
      },
      entries: () => queue.list().map((j) => ({
        id: j.id, upstream: j.upstream, repository: j.repository, kind: j.kind, digest: j.digest, tag: j.tag, state: j.state,
        attempts: j.attempts,
        ageSeconds: Math.max(0, Math.round((now() - j.createdAt) / 1000)),
        nextAttemptSeconds: Math.max(0, Math.round((j.nextAttemptAt - now()) / 1000)),
        waitingFor: j.waitingFor,
        lastError: j.lastError,
      })),
    },
    protect: (digest) => queue.needs(digest),
    start: async (cache) => {
      await uploads.start();
      worker.start();
      started = true;
      return new PushService({ blobs, metadata, cache, queue, uploads, replicator, worker, logger, deleteEnabled: config.storage.deleteEnabled });
    },
    close: async () => {
      if (started) await Promise.all([worker.stop(), uploads.stop()]);
      db.close();
    },
  };
}
