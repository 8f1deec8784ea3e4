/** @module storage/replication-queue-db — the local (SQLite, push.db) implementation of the replication queue port. */
import type Database from 'better-sqlite3';
import type { Claimant, Job, JobKind, JobState, JobView, ReplicationQueue } from '../ports/replication-queue.js';
import { releaseReplicatingTag } from './held-tags-db.js';

const JOB_COLUMNS = `id, upstream, repository, kind, digest, tag, base_digest AS baseDigest, state, attempts, refusals,
  next_attempt_at AS nextAttemptAt, last_error AS lastError, transient, created_at AS createdAt, updated_at AS updatedAt,
  owner, lease_until AS leaseUntil`;

/**
 * Jobs replicate one item each to an upstream: a blob, a manifest (by digest) or a tag. A job runs
 * only when every job it needs (replication_deps) is gone, which gives the order blobs ->
 * manifests -> tags. Rows survive restarts. Every method is one short transaction, safe while
 * berth runs or not.
 */
export class SqliteReplicationQueue implements ReplicationQueue {
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {}

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
    return Number(
      this.db
        .prepare(
          `INSERT INTO replication_jobs (upstream, repository, kind, digest, tag, base_digest, next_attempt_at, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(upstream, repository, kind, digest, tag, baseDigest, t, t, t).lastInsertRowid,
    );
  }

  private need(job: number, needs: number): void {
    if (job !== needs) this.db.prepare('INSERT OR IGNORE INTO replication_deps (job, needs) VALUES (?, ?)').run(job, needs);
  }

  async enqueueBlob(upstream: string, repository: string, digest: string): Promise<number> {
    return this.db.transaction(() => this.ensure(upstream, repository, 'blob', digest)).immediate();
  }

  /**
   * Queues a manifest after the items it references and, with a tag, the tag after the manifest.
   * An older queued push of the same tag is superseded (or, while running, waited for), so the
   * newest local push is what the upstream ends up with.
   */
  async enqueueManifest(
    upstream: string,
    repository: string,
    digest: string,
    children: ReadonlyArray<{ kind: 'blob' | 'manifest'; digest: string }>,
    tag?: { tag: string; baseDigest: string | null },
  ): Promise<{ manifestJob: number; tagJob: number | undefined }> {
    return this.db
      .transaction(() => {
        const fresh =
          this.db
            .prepare("SELECT 1 FROM replication_jobs WHERE upstream = ? AND repository = ? AND kind = 'manifest' AND digest = ?")
            .get(upstream, repository, digest) === undefined;
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
        this.db
          .prepare(
            `INSERT INTO held_tags (upstream, repository, tag, digest, reason, created_at) VALUES (?, ?, ?, ?, 'replicating', ?)
          ON CONFLICT (upstream, repository, tag) DO UPDATE SET digest = excluded.digest, reason = excluded.reason, created_at = excluded.created_at`,
          )
          .run(upstream, repository, tag.tag, digest, this.now());
        return { manifestJob, tagJob };
      })
      .immediate();
  }

  /** Takes up to `limit` due jobs of an upstream whose prerequisites are done, marking them running under `by`. */
  async claim(upstream: string, limit: number, by: Claimant): Promise<Job[]> {
    return this.db
      .transaction(() => {
        const jobs = this.db
          .prepare(
            `SELECT ${JOB_COLUMNS} FROM replication_jobs j WHERE upstream = ? AND state = 'pending' AND next_attempt_at <= ?
          AND NOT EXISTS (SELECT 1 FROM replication_deps d WHERE d.job = j.id) ORDER BY id LIMIT ?`,
          )
          .all(upstream, this.now(), limit) as Job[];
        const mark = this.db.prepare("UPDATE replication_jobs SET state = 'running', owner = ?, lease_until = ?, updated_at = ? WHERE id = ?");
        const leaseUntil = this.now() + by.leaseMs;
        for (const j of jobs) mark.run(by.owner, leaseUntil, this.now(), j.id);
        return jobs.map((j) => ({ ...j, state: 'running' as const, owner: by.owner, leaseUntil }));
      })
      .immediate();
  }

  /** Done: the job goes, and so does what waited on it. A tag stops being held once the upstream has it. */
  async renew(ids: readonly number[], by: Claimant): Promise<void> {
    const stmt = this.db.prepare("UPDATE replication_jobs SET lease_until = ? WHERE id = ? AND state = 'running' AND owner = ?");
    this.db
      .transaction(() => {
        for (const id of ids) stmt.run(this.now() + by.leaseMs, id, by.owner);
      })
      .immediate();
  }

  async complete(job: Job): Promise<void> {
    this.db
      .transaction(() => {
        const row = this.db.prepare('SELECT digest FROM replication_jobs WHERE id = ?').get(job.id) as { digest: string } | undefined;
        this.remove(job.id);
        if (job.kind === 'tag' && row?.digest === job.digest) {
          const newer = this.db
            .prepare("SELECT 1 FROM replication_jobs WHERE upstream = ? AND repository = ? AND kind = 'tag' AND tag = ?")
            .get(job.upstream, job.repository, job.tag);
          if (!newer) {
            releaseReplicatingTag(this.db, job);
          }
        }
      })
      .immediate();
  }

  /** Records a failed attempt: back to pending at `nextAttemptAt`, or `failed` (waits for `berth queue retry`). */
  async fail(id: number, error: string, opts: { transient: boolean; nextAttemptAt: number; giveUp: boolean }): Promise<void> {
    this.db
      .prepare(
        `UPDATE replication_jobs SET state = ?, attempts = attempts + 1, refusals = refusals + ?, next_attempt_at = ?, last_error = ?, transient = ?, updated_at = ?,
        owner = NULL, lease_until = NULL
        WHERE id = ? AND state = 'running'`,
      )
      .run(opts.giveUp ? 'failed' : 'pending', opts.transient ? 0 : 1, opts.nextAttemptAt, error.slice(0, 1000), opts.transient ? 1 : 0, this.now(), id);
  }

  /**
   * After a crash the owner runs nothing: its jobs are simply due again, and so are jobs whose
   * lease lapsed or that have no owner (written before owners were recorded). Jobs a live owner
   * holds a lease on are left to it.
   */
  async recover(owner?: string): Promise<number> {
    return this.db
      .prepare(
        `UPDATE replication_jobs SET state = 'pending', owner = NULL, lease_until = NULL
        WHERE state = 'running' AND (owner IS NULL OR owner = ? OR lease_until IS NULL OR lease_until <= ?)`,
      )
      .run(owner ?? null, this.now()).changes;
  }

  /** The upstream is back: jobs that waited out a network error are due now, not at the end of their backoff. */
  async wakeTransient(upstream: string): Promise<number> {
    return this.db
      .prepare("UPDATE replication_jobs SET next_attempt_at = ? WHERE upstream = ? AND state = 'pending' AND transient = 1 AND next_attempt_at > ?")
      .run(this.now(), upstream, this.now()).changes;
  }

  /** Earliest time a pending job of the upstream is due, if any. */
  async nextDue(upstream: string): Promise<number | undefined> {
    const row = this.db.prepare("SELECT MIN(next_attempt_at) AS t FROM replication_jobs WHERE upstream = ? AND state = 'pending'").get(upstream) as {
      t: number | null;
    };
    return row.t ?? undefined;
  }

  async list(): Promise<JobView[]> {
    const jobs = this.db.prepare(`SELECT ${JOB_COLUMNS} FROM replication_jobs ORDER BY id`).all() as Job[];
    const deps = this.db.prepare('SELECT job, needs FROM replication_deps ORDER BY needs').all() as Array<{ job: number; needs: number }>;
    const waiting = new Map<number, number[]>();
    for (const d of deps) waiting.set(d.job, [...(waiting.get(d.job) ?? []), d.needs]);
    return jobs.map((j) => ({ ...j, waitingFor: waiting.get(j.id) ?? [] }));
  }

  async get(id: number): Promise<Job | undefined> {
    return this.row(id);
  }

  private row(id: number): Job | undefined {
    return this.db.prepare(`SELECT ${JOB_COLUMNS} FROM replication_jobs WHERE id = ?`).get(id) as Job | undefined;
  }

  /** Makes a pending or failed job due now with a fresh attempt count; false when there is no such job. */
  async retry(id: number): Promise<boolean> {
    return (
      this.db
        .prepare(
          "UPDATE replication_jobs SET state = 'pending', attempts = 0, refusals = 0, next_attempt_at = ?, updated_at = ? WHERE id = ? AND state != 'running'",
        )
        .run(this.now(), this.now(), id).changes > 0
    );
  }

  /** Removes a job for good; jobs waiting on it are released (and fail upstream if they really needed it). */
  async drop(id: number): Promise<Job | undefined> {
    return this.db
      .transaction(() => {
        const job = this.row(id);
        if (!job) return undefined;
        this.remove(id);
        if (job.kind === 'tag') releaseReplicatingTag(this.db, job);
        return job;
      })
      .immediate();
  }

  private remove(id: number): void {
    this.db.prepare('DELETE FROM replication_jobs WHERE id = ?').run(id);
    this.db.prepare('DELETE FROM replication_deps WHERE job = ? OR needs = ?').run(id, id);
  }

  /** Whether any queued job still needs the digest's bytes from the local store. */
  async needs(digest: string): Promise<boolean> {
    return this.db.prepare('SELECT 1 FROM replication_jobs WHERE digest = ? LIMIT 1').get(digest) !== undefined;
  }

  async needed(): Promise<Set<string>> {
    return new Set((this.db.prepare('SELECT DISTINCT digest FROM replication_jobs').all() as Array<{ digest: string }>).map((r) => r.digest));
  }

  async counts(): Promise<{ pending: number; running: number; failed: number }> {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM replication_jobs GROUP BY state').all() as Array<{ state: JobState; n: number }>;
    const out = { pending: 0, running: 0, failed: 0 };
    for (const r of rows) out[r.state] = r.n;
    return out;
  }
}
