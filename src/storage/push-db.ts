/** @module storage/push-db — push.db: opening it, its schema and migrations (replication queue, held tags, upload rows). */
import type Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { StoreLayout } from './layout.js';
import { addColumn, openDatabase, type Migration } from './migrations.js';
import { SqliteReplicationQueue } from './replication-queue-db.js';
import { SqliteHeldTags } from './held-tags-db.js';

/**
 * push.db sits beside metadata.db. held_tags are tags whose local record wins over the
 * upstream's: pushed in `local` mode, or waiting for replication.
 */
const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS replication_jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  upstream TEXT NOT NULL,
  repository TEXT NOT NULL,
  kind TEXT NOT NULL,
  digest TEXT NOT NULL,
  tag TEXT,
  base_digest TEXT,
  state TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT,
  transient INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS replication_jobs_due ON replication_jobs (upstream, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS replication_jobs_digest ON replication_jobs (digest);
CREATE TABLE IF NOT EXISTS replication_deps (
  job INTEGER NOT NULL,
  needs INTEGER NOT NULL,
  PRIMARY KEY (job, needs)
);
CREATE INDEX IF NOT EXISTS replication_deps_needs ON replication_deps (needs);
CREATE TABLE IF NOT EXISTS held_tags (
  upstream TEXT NOT NULL,
  repository TEXT NOT NULL,
  tag TEXT NOT NULL,
  digest TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (upstream, repository, tag)
);
CREATE TABLE IF NOT EXISTS uploads (
  id TEXT PRIMARY KEY,
  upstream TEXT NOT NULL,
  repository TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
`;

/**
 * 1: the schema of berth 0.1.0. 2: running jobs record who runs them and until when (owner,
 * lease). 3: refusals are counted apart from attempts (a long outage must not use up a job's tries).
 */
export const PUSH_MIGRATIONS: readonly Migration[] = [
  (db) => db.exec(SCHEMA_V1),
  (db) => {
    addColumn(db, 'replication_jobs', 'owner', 'TEXT');
    addColumn(db, 'replication_jobs', 'lease_until', 'INTEGER');
  },
  (db) => addColumn(db, 'replication_jobs', 'refusals', 'INTEGER NOT NULL DEFAULT 0'),
];

export function openPushDatabase(root: string): Database.Database {
  // FULL: an accepted write-behind push must survive power loss, not only a process crash.
  return openDatabase(new StoreLayout(root).pushDb, 'push.db', PUSH_MIGRATIONS, 'FULL');
}

/** The queue of an existing store, for commands run beside (or without) a running berth; undefined when it has none. */
export function openExistingQueue(root: string, now: () => number): { queue: SqliteReplicationQueue; heldTags: SqliteHeldTags; close(): void } | undefined {
  if (!existsSync(new StoreLayout(root).pushDb)) return undefined;
  const db = openPushDatabase(root);
  return { queue: new SqliteReplicationQueue(db, now), heldTags: new SqliteHeldTags(db, now), close: () => db.close() };
}
