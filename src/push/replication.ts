/** @module push/replication — carrying pushed content to an upstream: the shared steps, and the write-behind worker that drains the queue. */
import type { Logger } from 'pino';
import { isTransient } from '../oci/errors.js';
import { blobUnknown, manifestUnservable } from '../oci/error-catalogue.js';
import type { BlobStore } from '../storage/blob-files.js';
import type { Claimant, Job, ReplicationQueue } from '../ports/replication-queue.js';
import type { ManifestRecords, RepositoryLinks } from '../ports/repository-index.js';
import { blobExists, manifestDigest, putManifest, sendBlob } from '../upstream/registry-api.js';
import type { Target, Upstream } from '../upstream/target.js';
import { PromiseFlight } from '../util/single-flight.js';
import type { PushSite } from '../ports/push-site.js';

export interface ReplicatorDeps {
  readonly blobs: BlobStore;
  readonly repos: RepositoryLinks & ManifestRecords;
  readonly logger: Logger;
  /** A site's replicas: bytes this replica lacks (the push was taken by another) come from a replica holding them. */
  readonly site?: Pick<PushSite<Target>, 'gatherBlob' | 'gatherManifest'>;
}

export type BlobOutcome = 'present' | 'mounted' | 'uploaded';

/** The steps of a push to an upstream, used synchronously (write-through) and by the queue (write-behind). */
export class Replicator {
  /** Blob transfers in progress per upstream, repository and digest: concurrent pushes share one. */
  private readonly inflight = new PromiseFlight<BlobOutcome>();

  constructor(private readonly deps: ReplicatorDeps) {}

  /** Makes sure the upstream repository has the blob: HEAD first, then a mount or the bytes from the local store. */
  ensureBlob(target: Target, digest: string): Promise<BlobOutcome> {
    const key = `${target.key}\u0000${target.repository}\u0000${digest}`;
    return this.inflight.run(key, () => this.sendBlob(target, digest));
  }

  private async sendBlob(target: Target, digest: string): Promise<BlobOutcome> {
    const { client } = target.upstream!;
    const { blobs, repos } = this.deps;
    if (await blobExists(client, target.repository, digest)) return 'present';
    // Opened once: every attempt of the upload reads the same descriptor, whatever eviction does.
    let stored = await blobs.open(digest);
    if (!stored && (await this.deps.site?.gatherBlob(target, digest))) stored = await blobs.open(digest);
    if (!stored) {
      throw blobUnknown(digest, `blob ${digest} is neither stored by berth nor present in ${target.repository} at upstream ${client.name}; push it again`);
    }
    try {
      const from = (await repos.repositoriesWith(target.key, digest)).filter((r) => r !== target.repository);
      return await sendBlob(client, target.repository, digest, { size: stored.size, open: (start, end) => stored.stream(start, end) }, from);
    } finally {
      await stored.close();
    }
  }

  /** PUTs a locally stored manifest to the upstream by digest (idempotent). */
  async ensureManifest(target: Target, digest: string): Promise<'present' | 'uploaded'> {
    const { client } = target.upstream!;
    const local = await this.localManifest(target, digest);
    if (!local) {
      if ((await manifestDigest(client, target.repository, digest)) === digest) return 'present';
      throw manifestUnservable(`manifest ${digest} is neither stored by berth nor present in ${target.repository} at upstream ${client.name}; push it again`, {
        digest,
      });
    }
    await putManifest(client, target.repository, digest, local.mediaType, local.body);
    return 'uploaded';
  }

  /**
   * Points an upstream tag at a locally pushed manifest. The newer local push wins: when the tag
   * moved upstream since the push was queued, it is overwritten and the digest it had is logged.
   */
  async putTag(target: Target, tag: string, digest: string, baseDigest: string | null, queuedAt?: number): Promise<{ previous: string | undefined }> {
    const { client } = target.upstream!;
    const previous = await manifestDigest(client, target.repository, tag);
    if (previous === digest) return { previous };
    const local = await this.localManifest(target, digest);
    if (!local) throw manifestUnservable(`manifest ${digest} for tag ${tag} is no longer stored by berth; push the tag again`, { digest, tag });
    if (previous !== undefined && previous !== baseDigest) {
      this.deps.logger.warn(
        { upstream: client.name, repository: target.repository, tag, overwritten: previous, digest, queuedAt },
        'tag moved upstream after the local push was queued; the newer local push wins and overwrites it',
      );
    }
    await putManifest(client, target.repository, tag, local.mediaType, local.body);
    return { previous };
  }

  private async localManifest(target: Target, digest: string): Promise<{ mediaType: string; body: Buffer } | undefined> {
    const { repos, site } = this.deps;
    let record = await repos.manifest(target.key, target.repository, digest);
    if (!record && (await site?.gatherManifest(target, digest))) record = await repos.manifest(target.key, target.repository, digest);
    if (!record) return undefined;
    const body = await this.deps.blobs.readAll(digest).catch(() => undefined);
    return body ? { mediaType: record.mediaType, body } : undefined;
  }
}

export interface ReplicationPolicy {
  /** Jobs per upstream at once. */
  readonly concurrency: number;
  readonly baseDelayMs: number;
  /** Backoff cap: an outage of days is retried at this pace (and at once when the upstream answers again). */
  readonly maxDelayMs: number;
  /** Refusals (4xx) tried this often before the job is marked failed and waits for `berth queue retry`. */
  readonly maxRefusals: number;
  /** How often the queue is read for work added from outside (the `berth queue` command). */
  readonly pollMs: number;
}

export const DEFAULT_REPLICATION: ReplicationPolicy = { concurrency: 3, baseDelayMs: 2_000, maxDelayMs: 5 * 60_000, maxRefusals: 5, pollMs: 2_000 };

/** A claim lasts this long unless renewed; the worker renews at a third of it while a job runs. */
export const JOB_LEASE_MS = 60_000;

export interface WorkerDeps {
  readonly queue: ReplicationQueue;
  /** Who this worker claims jobs as (one name per replica; "local" for a single berth). */
  readonly owner: string;
  readonly replicator: Replicator;
  readonly upstreams: readonly Upstream[];
  readonly logger: Logger;
  readonly now: () => number;
  readonly policy?: ReplicationPolicy;
  /** How long a claim holds unless renewed (JOB_LEASE_MS): a site's replicas take a dead one's jobs after this. */
  readonly leaseMs?: number;
}

/** Drains the write-behind queue: one loop per upstream, jobs in dependency order, retried with capped exponential backoff. */
export class ReplicationWorker {
  private stopped = false;
  private readonly running = new Map<string, Set<Promise<void>>>();
  private readonly wakers = new Map<string, () => void>();
  private loops: Promise<void>[] = [];
  private readonly policy: ReplicationPolicy;
  private readonly claimant: Claimant;
  /** Ids of the jobs this worker runs now, whose leases it renews. */
  private readonly held = new Set<number>();
  private renewer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: WorkerDeps) {
    this.policy = deps.policy ?? DEFAULT_REPLICATION;
    this.claimant = { owner: deps.owner, leaseMs: deps.leaseMs ?? JOB_LEASE_MS };
  }

  async start(): Promise<void> {
    const { queue, logger, upstreams } = this.deps;
    const reset = await queue.recover(this.deps.owner);
    const counts = await queue.counts();
    if (counts.pending + counts.failed > 0) logger.info({ ...counts, resumed: reset }, 'replication queue loaded');
    const known = new Set(upstreams.map((u) => u.config.name));
    const orphans = (await queue.list()).filter((j) => !known.has(j.upstream));
    if (orphans.length > 0)
      logger.warn(
        { jobs: orphans.length, upstreams: [...new Set(orphans.map((j) => j.upstream))] },
        'queued replications name upstreams that are no longer configured; they wait (see berth queue)',
      );
    this.renewer = setInterval(() => {
      if (this.held.size > 0)
        queue.renew([...this.held], this.claimant).catch((err: Error) => logger.warn({ err: err.message }, 'could not renew replication leases'));
      // Another owner of a shared queue may have died mid-job: its lapsed claims are due again.
      queue
        .recover()
        .then((n) => {
          if (n > 0) {
            logger.info({ jobs: n }, 'replication jobs whose owner stopped renewing are due again');
            for (const u of upstreams) this.kick(u.config.name);
          }
        })
        .catch(() => undefined);
    }, this.claimant.leaseMs / 3);
    this.renewer.unref();
    this.loops = upstreams.map((u) => this.loop(u));
  }

  /** Something was queued or finished: look again now. */
  kick(key: string): void {
    this.wakers.get(key)?.();
  }

  /** Stops taking jobs; jobs cut short stay queued and run again after the next start. */
  async stop(deadlineMs = 5_000): Promise<void> {
    this.stopped = true;
    if (this.renewer) clearInterval(this.renewer);
    for (const wake of this.wakers.values()) wake();
    const inflight = [...this.running.values()].flatMap((s) => [...s]);
    await Promise.race([Promise.all([...this.loops, ...inflight]), new Promise((r) => setTimeout(r, deadlineMs).unref())]);
  }

  private async loop(upstream: Upstream): Promise<void> {
    const key = upstream.config.name;
    const { queue, now } = this.deps;
    const running = new Set<Promise<void>>();
    this.running.set(key, running);
    let wasDown = false;
    while (!this.stopped) {
      const down = upstream.client.breaker.state === 'down';
      // Back from an outage: what waited out network errors goes now, not at the end of its backoff.
      if (wasDown && !down) await this.settleAsync(() => queue.wakeTransient(key));
      wasDown = down;
      const free = this.policy.concurrency - running.size;
      if (!down && free > 0) {
        for (const job of (await this.settleAsync(() => queue.claim(key, free, this.claimant))) ?? []) {
          // Claimed as the worker stopped: the job stays this owner's and runs after the next start.
          if (this.stopped) break;
          this.held.add(job.id);
          const p = this.run(upstream, job).finally(() => {
            this.held.delete(job.id);
            running.delete(p);
            this.kick(key);
          });
          running.add(p);
        }
      }
      const next = await this.settleAsync(() => queue.nextDue(key));
      const wait = next !== undefined && next > now() ? Math.min(next - now(), this.policy.pollMs) : this.policy.pollMs;
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        timer.unref();
        this.wakers.set(key, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Bookkeeping during shutdown, when the queue may already be closed: false if it could not be done. */
  private async settle(step: () => Promise<void>): Promise<boolean> {
    try {
      await step();
      return true;
    } catch {
      return false;
    }
  }

  /** A queue read in the loop; once stopping, a closed queue reads as nothing to do. */
  private async settleAsync<T>(step: () => Promise<T>): Promise<T | undefined> {
    if (!this.stopped) return step();
    return step().catch(() => undefined);
  }

  private async run(upstream: Upstream, job: Job): Promise<void> {
    const { queue, replicator, logger, now } = this.deps;
    const target: Target = { upstream, key: job.upstream, repository: job.repository };
    const log = { job: job.id, kind: job.kind, upstream: job.upstream, repository: job.repository, digest: job.digest, tag: job.tag ?? undefined };
    const started = now();
    try {
      let outcome: string;
      if (job.kind === 'blob') outcome = await replicator.ensureBlob(target, job.digest);
      else if (job.kind === 'manifest') outcome = await replicator.ensureManifest(target, job.digest);
      else {
        const { previous } = await replicator.putTag(target, job.tag!, job.digest, job.baseDigest, job.createdAt);
        outcome = previous === job.digest ? 'present' : 'tagged';
      }
      if (!this.stopped) await queue.complete(job);
      // During shutdown the queue may be closed already; the job then runs again and finds its work done.
      else if (!(await this.settle(() => queue.complete(job)))) return;
      logger.info({ ...log, outcome, ms: now() - started, queuedMs: now() - job.createdAt }, 'replicated');
    } catch (err) {
      // Cut short by shutdown: the row stays `running` and runs again after the next start.
      if (this.stopped) return;
      const transient = isTransient(err);
      const attempts = job.attempts + 1;
      // Only refusals count towards giving up: a centre down for a day leaves every try intact.
      const giveUp = !transient && job.refusals + 1 >= this.policy.maxRefusals;
      const delay = Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** Math.min(attempts - 1, 20));
      const message = (err as Error).message;
      try {
        await queue.fail(job.id, message, { transient, nextAttemptAt: now() + delay, giveUp });
      } catch (failErr) {
        // The queue is unreachable too: the claim lapses and the job runs again then.
        logger.warn({ ...log, err: message, queueErr: (failErr as Error).message }, 'replication attempt failed and could not be recorded');
        return;
      }
      if (giveUp) logger.error({ ...log, attempts, err: message }, 'replication failed for good; see berth queue, then berth queue retry or drop');
      else logger.warn({ ...log, attempts, retryInMs: delay, err: message }, 'replication attempt failed; will retry');
    }
  }
}

/** Network trouble, 5xx and 429 are waited out; refusals (4xx) count towards giving up. */
