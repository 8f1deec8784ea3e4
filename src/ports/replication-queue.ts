/** @module ports/replication-queue — the port for the durable write-behind queue: jobs in dependency order, claimed with an owner and a lease. */

export type JobKind = 'blob' | 'manifest' | 'tag';
export type JobState = 'pending' | 'running' | 'failed';

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
  /** Attempts the upstream refused (4xx), of all attempts: what counts towards giving up. */
  readonly refusals: number;
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
  /** 1 when the last error was the network or a 5xx/429: the job runs again once the upstream answers. */
  readonly transient: 0 | 1;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Who runs it while `running`, and until when that claim holds. */
  readonly owner: string | null;
  readonly leaseUntil: number | null;
}

export interface JobView extends Job {
  /** Ids of jobs this one waits for. */
  readonly waitingFor: number[];
}

/** Who claims jobs and for how long: a claim not renewed before `leaseMs` lapses and another owner may run the job. */
export interface Claimant {
  readonly owner: string;
  readonly leaseMs: number;
}

export interface ReplicationQueue {
  enqueueBlob(upstream: string, repository: string, digest: string): Promise<number>;
  /**
   * Queues a manifest after the items it references and, with a tag, the tag after the manifest
   * (holding the tag as `replicating`). An older queued push of the same tag is superseded, or
   * waited for while it runs.
   */
  enqueueManifest(
    upstream: string,
    repository: string,
    digest: string,
    children: ReadonlyArray<{ kind: 'blob' | 'manifest'; digest: string }>,
    tag?: { tag: string; baseDigest: string | null },
  ): Promise<{ manifestJob: number; tagJob: number | undefined }>;
  /** Takes up to `limit` due jobs whose prerequisites are done: running, owned by `by` until its lease ends. */
  claim(upstream: string, limit: number, by: Claimant): Promise<Job[]>;
  /** Extends the lease of jobs `owner` still runs. */
  renew(ids: readonly number[], by: Claimant): Promise<void>;
  complete(job: Job): Promise<void>;
  fail(id: number, error: string, opts: { transient: boolean; nextAttemptAt: number; giveUp: boolean }): Promise<void>;
  /**
   * Start-up: jobs `owner` was running when it stopped, and jobs whose lease lapsed (their owner
   * died), are due again. Jobs other live owners run are left alone. Without an owner (a periodic
   * sweep while running): only lapsed leases.
   */
  recover(owner?: string): Promise<number>;
  wakeTransient(upstream: string): Promise<number>;
  nextDue(upstream: string): Promise<number | undefined>;
  list(): Promise<JobView[]>;
  get(id: number): Promise<Job | undefined>;
  retry(id: number): Promise<boolean>;
  drop(id: number): Promise<Job | undefined>;
  /** Whether any queued job still needs the digest's bytes from the local store. */
  needs(digest: string): Promise<boolean>;
  /** Every digest queued jobs need (one read, for an eviction pass). */
  needed(): Promise<Set<string>>;
  counts(): Promise<{ pending: number; running: number; failed: number }>;
}
