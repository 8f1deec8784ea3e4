/** @module storage/queue — the durable write-behind replication queue, held tags and upload rows in SQLite (push.db). */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * push.db sits beside metadata.db. Jobs replicate one item each to an upstream: a blob, a
 * manifest (by digest) or a tag. A job runs only when every job it needs (replication_deps) is
 * gone, which gives the order blobs -> manifests -> tags. Rows survive restarts; `running` rows
 * left by a crash go back to `pending` on start-up. held_tags are tags whose local record wins
 * over the upstream's: pushed in `local` mode, or waiting for replication.
 */
const SCHEMA = `
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

export type JobKind = 'blob' | 'manifest' | 'tag';
export type JobState = 'pending' | 'running' | 'failed';
/** Why a tag is held locally: pushed in local mode (for good), or waiting for replication. */
export type HoldReason = 'local' | 'replicating';

export interface Job {
  readonly id: number;
  readonly upstream: string;
  readonly repository: string;
  readonly kind: JobKind;
  readonly digest: string;
  readonly tag: string | null;
  /** For tag jobs: the digest berth knew for the tag when the push was queued. */
  readonly baseDigest: string | null;
  readonly state: JobState;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
  /** 1 when the last error was the network or a 5xx/429: the job runs again once the upstream answers. */
  readonly transient: 0 | 1;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface JobView extends Job {
  /** Ids of jobs this one waits for. */
  readonly waitingFor: number[];
}

export interface UploadRow {
  readonly id: string;
  readonly upstream: string;
  readonly repository: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

const JOB_COLUMNS = `id, upstream, repository, kind, digest, tag, base_digest AS baseDigest, state, attempts,
  next_attempt_at AS nextAttemptAt, last_error AS lastError, transient, created_at AS createdAt, updated_at AS updatedAt`;

export function openPushDatabase(root: string): Database.Database {
  const db = new Database(join(root, 'push.db'));
  db.pragma('journal_mode = WAL');
  // FULL: an accepted write-behind push must survive power loss, not only a process crash.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  return db;
}

/** The queue of an existing store, for commands run beside (or without) a running berth; undefined when it has none. */
export function openExistingQueue(root: string, now: () => number): { queue: QueueStore; close(): void } | undefined {
  if (!existsSync(join(root, 'push.db'))) return undefined;
  const db = openPushDatabase(root);
  return { queue: new QueueStore(db, now), close: () => db.close() };
}

/** The replication queue. Every method is one short transaction, safe while berth runs or not. */
export class QueueStore {
  constructor(private readonly db: Database.Database, private readonly now: () => number) {}

  /** An unfinished job for the same item, or a new one. */
  private ensure(upstream: string, repository: string, kind: 'blob' | 'manifest', digest: string): number {
    const existing = this.db
      .prepare('SELECT id FROM replication_jobs WHERE upstream = ? AND repository = ? AND kind = ? AND digest = ? ORDER BY id LIMIT 1')
      .get(upstream, repository, kind, digest) as { id: number } | undefined;
    if (existing) return existing.id;
    return this.insert(upstream, repository, kind, digest, null, null);
  }

  private insert(upstream: string, repository: string, kind: JobKind, digest: string, tag: string | null, baseDigest: string | null): number {
    const t = this.now();
    return Number(this.db
      .prepare(`INSERT INTO replication_jobs (upstream, repository, kind, digest, tag, base_digest, next_attempt_at, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(upstream, repository, kind, digest, tag, baseDigest, t, t, t).lastInsertRowid);
  }

  private need(job: number, needs: number): void {
    if (job !== needs) this.db.prepare('INSERT OR IGNORE INTO replication_deps (job, needs) VALUES (?, ?)').run(job, needs);
  }

  enqueueBlob(upstream: string, repository: string, digest: string): number {
    return this.db.transaction(() => this.ensure(upstream, repository, 'blob', digest))();
  }

  /**
   * Queues a manifest after the items it references and, with a tag, the tag after the manifest.
   * An older queued push of the same tag is superseded (or, while running, waited for), so the
   * newest local push is what the upstream ends up with.
   */
  enqueueManifest(
    upstream: string,
    repository: string,
    digest: string,
    children: ReadonlyArray<{ kind: 'blob' | 'manifest'; digest: string }>,
    tag?: { tag: string; baseDigest: string | null },
  ): { manifestJob: number; tagJob: number | undefined } {
    return this.db.transaction(() => {
      const fresh = this.db.prepare("SELECT 1 FROM replication_jobs WHERE upstream = ? AND repository = ? AND kind = 'manifest' AND digest = ?").get(upstream, repository, digest) === undefined;
      const manifestJob = this.ensure(upstream, repository, 'manifest', digest);
      if (fresh) for (const c of children) this.need(manifestJob, this.ensure(upstream, repository, c.kind, c.digest));
      if (!tag) return { manifestJob, tagJob: undefined };
      const older = this.db
        .prepare("SELECT id, state FROM replication_jobs WHERE upstream = ? AND repository = ? AND kind = 'tag' AND tag = ?")
        .all(upstream, repository, tag.tag) as Array<{ id: number; state: JobState }>;
      const tagJob = this.insert(upstream, repository, 'tag', digest, tag.tag, tag.baseDigest);
      for (const o of older) {
        if (o.state === 'running') this.need(tagJob, o.id);
        else this.remove(o.id);
      }
      this.need(tagJob, manifestJob);
      this.holdTag(upstream, repository, tag.tag, digest, 'replicating');
      return { manifestJob, tagJob };
    })();
  }

  /** Takes up to `limit` due jobs of an upstream whose prerequisites are done, marking them running. */
  claim(upstream: string, limit: number): Job[] {
    return this.db.transaction(() => {
      const jobs = this.db
        .prepare(`SELECT ${JOB_COLUMNS} FROM replication_jobs j WHERE upstream = ? AND state = 'pending' AND next_attempt_at <= ?
          AND NOT EXISTS (SELECT 1 FROM replication_deps d WHERE d.job = j.id) ORDER BY id LIMIT ?`)
        .all(upstream, this.now(), limit) as Job[];
      const mark = this.db.prepare("UPDATE replication_jobs SET state = 'running', updated_at = ? WHERE id = ?");
      for (const j of jobs) mark.run(this.now(), j.id);
      return jobs.map((j) => ({ ...j, state: 'running' as const }));
    })();
  }

  /** Done: the job goes, and so does what waited on it. A tag stops being held once the upstream has it. */
  complete(job: Job): void {
    this.db.transaction(() => {
      const row = this.db.prepare('SELECT digest FROM replication_jobs WHERE id = ?').get(job.id) as { digest: string } | undefined;
      this.remove(job.id);
      if (job.kind === 'tag' && row?.digest === job.digest) {
        const newer = this.db.prepare("SELECT 1 FROM replication_jobs WHERE upstream = ? AND repository = ? AND kind = 'tag' AND tag = ?").get(job.upstream, job.repository, job.tag);
        if (!newer) {
          this.db.prepare("DELETE FROM held_tags WHERE upstream = ? AND repository = ? AND tag = ? AND digest = ? AND reason = 'replicating'")
            .run(job.upstream, job.repository, job.tag, job.digest);
        }
      }
    })();
  }

  /** Records a failed attempt: back to pending at `nextAttemptAt`, or `failed` (waits for `berth queue retry`). */
  fail(id: number, error: string, opts: { transient: boolean; nextAttemptAt: number; giveUp: boolean }): void {
    this.db
      .prepare(`UPDATE replication_jobs SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?, transient = ?, updated_at = ?
        WHERE id = ? AND state = 'running'`)
      .run(opts.giveUp ? 'failed' : 'pending', opts.nextAttemptAt, error.slice(0, 1000), opts.transient ? 1 : 0, this.now(), id);
  }

  /** After a crash nothing is running: those jobs are simply due again. */
  resetRunning(): number {
    return this.db.prepare("UPDATE replication_jobs SET state = 'pending' WHERE state = 'running'").run().changes;
  }

  /** The upstream is back: jobs that waited out a network error are due now, not at the end of their backoff. */
  wakeTransient(upstream: string): number {
    return this.db
      .prepare("UPDATE replication_jobs SET next_attempt_at = ? WHERE upstream = ? AND state = 'pending' AND transient = 1 AND next_attempt_at > ?")
      .run(this.now(), upstream, this.now()).changes;
  }

  /** Earliest time a pending job of the upstream is due, if any. */
  nextDue(upstream: string): number | undefined {
    const row = this.db.prepare("SELECT MIN(next_attempt_at) AS t FROM replication_jobs WHERE upstream = ? AND state = 'pending'").get(upstream) as { t: number | null };
    return row.t ?? undefined;
  }

  list(): JobView[] {
    const jobs = this.db.prepare(`SELECT ${JOB_COLUMNS} FROM replication_jobs ORDER BY id`).all() as Job[];
    const deps = this.db.prepare('SELECT job, needs FROM replication_deps ORDER BY needs').all() as Array<{ job: number; needs: number }>;
    const waiting = new Map<number, number[]>();
    for (const d of deps) waiting.set(d.job, [...(waiting.get(d.job) ?? []), d.needs]);
    return jobs.map((j) => ({ ...j, waitingFor: waiting.get(j.id) ?? [] }));
  }

  get(id: number): Job | undefined {
    return this.db.prepare(`SELECT ${JOB_COLUMNS} FROM replication_jobs WHERE id = ?`).get(id) as Job | undefined;
  }

  /** Makes a pending or failed job due now with a fresh attempt count; false when there is no such job. */
  retry(id: number): boolean {
    return this.db
      .prepare("UPDATE replication_jobs SET state = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ? WHERE id = ? AND state != 'running'")
      .run(this.now(), this.now(), id).changes > 0;
  }

  /** Removes a job for good; jobs waiting on it are released (and fail upstream if they really needed it). */
  drop(id: number): Job | undefined {
    return this.db.transaction(() => {
      const job = this.get(id);
      if (!job) return undefined;
      this.remove(id);
      if (job.kind === 'tag') {
        this.db.prepare("DELETE FROM held_tags WHERE upstream = ? AND repository = ? AND tag = ? AND digest = ? AND reason = 'replicating'")
          .run(job.upstream, job.repository, job.tag, job.digest);
      }
      return job;
    })();
  }

  private remove(id: number): void {
    this.db.prepare('DELETE FROM replication_jobs WHERE id = ?').run(id);
    this.db.prepare('DELETE FROM replication_deps WHERE job = ? OR needs = ?').run(id, id);
  }

  /** Whether any queued job still needs the digest's bytes from the local store. */
  needs(digest: string): boolean {
    return this.db.prepare('SELECT 1 FROM replication_jobs WHERE digest = ? LIMIT 1').get(digest) !== undefined;
  }

  counts(): { pending: number; running: number; failed: number } {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM replication_jobs GROUP BY state').all() as Array<{ state: JobState; n: number }>;
    const out = { pending: 0, running: 0, failed: 0 };
    for (const r of rows) out[r.state] = r.n;
    return out;
  }

  holdTag(upstream: string, repository: string, tag: string, digest: string, reason: HoldReason): void {
    this.db
      .prepare(`INSERT INTO held_tags (upstream, repository, tag, digest, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (upstream, repository, tag) DO UPDATE SET digest = excluded.digest, reason = excluded.reason, created_at = excluded.created_at`)
      .run(upstream, repository, tag, digest, reason, this.now());
  }

  releaseTag(upstream: string, repository: string, tag: string): void {
    this.db.prepare('DELETE FROM held_tags WHERE upstream = ? AND repository = ? AND tag = ?').run(upstream, repository, tag);
  }

  releaseTagsOf(upstream: string, repository: string, digest: string): void {
    this.db.prepare('DELETE FROM held_tags WHERE upstream = ? AND repository = ? AND digest = ?').run(upstream, repository, digest);
  }

  isHeld(upstream: string, repository: string, tag: string): boolean {
    return this.db.prepare('SELECT 1 FROM held_tags WHERE upstream = ? AND repository = ? AND tag = ?').get(upstream, repository, tag) !== undefined;
  }

  heldTags(upstream: string, repository: string): string[] {
    return (this.db.prepare('SELECT tag FROM held_tags WHERE upstream = ? AND repository = ? ORDER BY tag').all(upstream, repository) as Array<{ tag: string }>).map((r) => r.tag);
  }
}

/** Rows of client uploads in progress; the bytes are temp files under <root>/uploads. */
export class UploadRows {
  constructor(private readonly db: Database.Database, private readonly now: () => number) {}

  insert(id: string, upstream: string, repository: string): void {
    const t = this.now();
    this.db.prepare('INSERT INTO uploads (id, upstream, repository, created_at, updated_at) VALUES (?, ?, ?, ?, ?)').run(id, upstream, repository, t, t);
  }

  get(id: string): UploadRow | undefined {
    return this.db.prepare('SELECT id, upstream, repository, created_at AS createdAt, updated_at AS updatedAt FROM uploads WHERE id = ?').get(id) as UploadRow | undefined;
  }

  touch(id: string): void {
    this.db.prepare('UPDATE uploads SET updated_at = ? WHERE id = ?').run(this.now(), id);
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM uploads WHERE id = ?').run(id);
  }

  all(): UploadRow[] {
    return this.db.prepare('SELECT id, upstream, repository, created_at AS createdAt, updated_at AS updatedAt FROM uploads').all() as UploadRow[];
  }
}
