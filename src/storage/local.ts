/** @module storage/local — opens the local implementations of every shared-state port for one store root. */
import type { BlobIndex } from '../ports/blob-index.js';
import type { HeldTags } from '../ports/held-tags.js';
import type { ReplicationQueue } from '../ports/replication-queue.js';
import type { RepositoryIndex } from '../ports/repository-index.js';
import type { UploadSessions } from '../ports/upload-sessions.js';
import { SqliteHeldTags } from './held-tags.js';
import { LocalBlobIndex, LocalRepositoryIndex } from './local-index.js';
import { MetadataStore } from './metadata.js';
import { openPushDatabase } from './push-db.js';
import { SqliteReplicationQueue } from './replication-queue.js';
import { SqliteUploadSessions } from './upload-rows.js';

/** The index side of the store (metadata.db). */
export interface IndexPorts {
  readonly blobIndex: BlobIndex;
  readonly repos: RepositoryIndex;
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

export function openLocalIndex(root: string, now: () => number): IndexPorts {
  const metadata = new MetadataStore(root, now);
  return {
    blobIndex: new LocalBlobIndex(metadata),
    repos: new LocalRepositoryIndex(metadata),
    ping: () => metadata.ping(),
    close: () => metadata.close(),
  };
}

export function openLocalPush(root: string, now: () => number): PushPorts {
  const db = openPushDatabase(root);
  return {
    queue: new SqliteReplicationQueue(db, now),
    heldTags: new SqliteHeldTags(db, now),
    uploads: new SqliteUploadSessions(db, now),
    close: () => db.close(),
  };
}
