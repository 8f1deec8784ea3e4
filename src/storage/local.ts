/** @module storage/local — opens the local implementations of every shared-state port for one store root. */
import type { BundleLog } from '../ports/bundle-log.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { HeldTags } from '../ports/held-tags.js';
import type { ReplicationQueue } from '../ports/replication-queue.js';
import type { RepositoryIndex } from '../ports/repository-index.js';
import type { UploadSessions } from '../ports/upload-sessions.js';
import { SqliteHeldTags } from './held-tags-db.js';
import { LocalBlobIndex, LocalRepositoryIndex } from './local-index.js';
import { MetadataStore } from './metadata.js';
import { openPushDatabase } from './push-db.js';
import { SqliteReplicationQueue } from './replication-queue-db.js';
import { SqliteUploadSessions } from './upload-rows.js';
import type { DiskSpace } from './disk-space.js';

/** The index side of the store (metadata.db). */
export interface IndexPorts {
  readonly blobIndex: BlobIndex;
  readonly repos: RepositoryIndex;
  /** The bundles imported into this store. */
  readonly bundles: BundleLog;
  /** True while the database answers (readiness). */
  ping(): boolean;
  close(): void;
}

/** The write side's shared state (push.db). */
export interface PushPorts {
  readonly queue: ReplicationQueue;
  readonly heldTags: HeldTags;
  readonly uploads: UploadSessions;
  close(): void;
}

/** Owner name of this process's queue claims: one store, one running berth (its lock says so). */
export const LOCAL_OWNER = 'local';

/** With `space`, each port's calls that meet a full disk release the reserve and run again (storage/disk-space). */
export function openLocalIndex(root: string, now: () => number, space?: DiskSpace): IndexPorts {
  const metadata = new MetadataStore(root, now);
  const g = guardWith(space);
  return {
    blobIndex: g(new LocalBlobIndex(metadata), 'metadata.db'),
    repos: g(new LocalRepositoryIndex(metadata), 'metadata.db'),
    bundles: g(metadata.bundleLog(), 'metadata.db'),
    ping: () => metadata.ping(),
    close: () => metadata.close(),
  };
}

export function openLocalPush(root: string, now: () => number, space?: DiskSpace): PushPorts {
  const db = openPushDatabase(root);
  const g = guardWith(space);
  return {
    queue: g(new SqliteReplicationQueue(db, now), 'push.db'),
    heldTags: g(new SqliteHeldTags(db, now), 'push.db'),
    uploads: g(new SqliteUploadSessions(db, now), 'push.db'),
    close: () => db.close(),
  };
}

function guardWith(space: DiskSpace | undefined): <T extends object>(port: T, name: string) => T {
  return (port, name) => (space ? space.guard(port, name) : port);
}
