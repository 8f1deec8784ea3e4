/** @module cluster/site-queue — a replica's write-behind queue and held tags: the site's (Redis) ones, this replica's local ones while Redis is away, and the move back. */
import type { Logger } from 'pino';
import type { HeldTags, HoldReason } from '../ports/held-tags.js';
import type { Claimant, Job, JobView, ReplicationQueue } from '../ports/replication-queue.js';

/**
 * Jobs of the local queue appear with negative ids, so both queues can be listed, retried and
 * dropped through one port without their ids colliding.
 */
const local = (id: number) => -id;
const isLocal = (id: number) => id < 0;
const fromLocal = <J extends Job>(j: J): J => ({ ...j, id: local(j.id) });

/**
 * Redis unreachable: a push is still accepted and queued durably, in this replica's own SQLite
 * queue (as a berth without a site would), and this replica replicates it; when Redis answers
 * again the pending local jobs move to the site's queue (dependencies kept) so any replica can
 * finish them. Nothing acknowledged is lost: a job leaves the local queue only after the site's
 * queue has it.
 */
export class SiteQueue implements ReplicationQueue {
  /** Set while local jobs move: the local queue hands out nothing meanwhile. */
  private moving = false;
  /** What the site's queue needed at its last answer: eviction keeps it while Redis is away. */
  private lastNeeded = new Set<string>();
  private down = false;

  constructor(
    private readonly shared: ReplicationQueue,
    private readonly own: ReplicationQueue,
    private readonly logger: Logger,
  ) {}

  /** Runs a step on the site's queue; undefined (logged once per outage) when Redis does not answer. */
  private async site<T>(step: () => Promise<T>): Promise<T | undefined> {
    try {
      const out = await step();
      if (this.down) this.logger.info('site replication queue answers again');
      this.down = false;
      return out;
    } catch (err) {
      if (!this.down) this.logger.warn({ err: (err as Error).message }, 'site replication queue unreachable; write-behind pushes queue on this replica');
      this.down = true;
      return undefined;
    }
  }

  async enqueueBlob(upstream: string, repository: string, digest: string): Promise<number> {
    return (await this.site(() => this.shared.enqueueBlob(upstream, repository, digest))) ?? local(await this.own.enqueueBlob(upstream, repository, digest));
  }

  async enqueueManifest(...args: Parameters<ReplicationQueue['enqueueManifest']>): Promise<{ manifestJob: number; tagJob: number | undefined }> {
    const shared = await this.site(() => this.shared.enqueueManifest(...args));
    if (shared) return shared;
    const r = await this.own.enqueueManifest(...args);
    return { manifestJob: local(r.manifestJob), tagJob: r.tagJob === undefined ? undefined : local(r.tagJob) };
  }

  async claim(upstream: string, limit: number, by: Claimant): Promise<Job[]> {
    const mine = this.moving ? [] : (await this.own.claim(upstream, limit, by)).map(fromLocal);
    if (mine.length >= limit) return mine;
    return [...mine, ...((await this.site(() => this.shared.claim(upstream, limit - mine.length, by))) ?? [])];
  }

  async renew(ids: readonly number[], by: Claimant): Promise<void> {
    const own = ids.filter(isLocal).map(local);
    const shared = ids.filter((id) => !isLocal(id));
    if (own.length > 0) await this.own.renew(own, by);
    if (shared.length > 0) await this.shared.renew(shared, by);
  }

  complete(job: Job): Promise<void> {
    return isLocal(job.id) ? this.own.complete({ ...job, id: local(job.id) }) : this.shared.complete(job);
  }

  fail(id: number, error: string, opts: Parameters<ReplicationQueue['fail']>[2]): Promise<void> {
    return isLocal(id) ? this.own.fail(local(id), error, opts) : this.shared.fail(id, error, opts);
  }

  async recover(owner?: string): Promise<number> {
    return (await this.own.recover(owner)) + ((await this.site(() => this.shared.recover(owner))) ?? 0);
  }

  async wakeTransient(upstream: string): Promise<number> {
    return (await this.own.wakeTransient(upstream)) + ((await this.site(() => this.shared.wakeTransient(upstream))) ?? 0);
  }

  async nextDue(upstream: string): Promise<number | undefined> {
    const times = [await this.own.nextDue(upstream), await this.site(() => this.shared.nextDue(upstream))].filter((t): t is number => t !== undefined);
    return times.length > 0 ? Math.min(...times) : undefined;
  }

  async list(): Promise<JobView[]> {
    const own = (await this.own.list()).map((j) => ({ ...fromLocal(j), waitingFor: j.waitingFor.map(local) }));
    return [...own, ...((await this.site(() => this.shared.list())) ?? [])];
  }

  async get(id: number): Promise<Job | undefined> {
    if (!isLocal(id)) return this.shared.get(id);
    const j = await this.own.get(local(id));
    return j && fromLocal(j);
  }

  retry(id: number): Promise<boolean> {
    return isLocal(id) ? this.own.retry(local(id)) : this.shared.retry(id);
  }

  async drop(id: number): Promise<Job | undefined> {
    if (!isLocal(id)) return this.shared.drop(id);
    const j = await this.own.drop(local(id));
    return j && fromLocal(j);
  }

  /** Unknown while Redis is away: kept (a delete then leaves the bytes). */
  async needs(digest: string): Promise<boolean> {
    return (await this.own.needs(digest)) || ((await this.site(() => this.shared.needs(digest))) ?? true);
  }

  async needed(): Promise<Set<string>> {
    const shared = await this.site(() => this.shared.needed());
    if (shared) this.lastNeeded = shared;
    return new Set([...(await this.own.needed()), ...this.lastNeeded]);
  }

  async counts(): Promise<{ pending: number; running: number; failed: number }> {
    const a = await this.own.counts();
    const b = (await this.site(() => this.shared.counts())) ?? { pending: 0, running: 0, failed: 0 };
    return { pending: a.pending + b.pending, running: a.running + b.running, failed: a.failed + b.failed };
  }

  /**
   * Moves the local queue's pending jobs to the site's queue, children before the manifests and
   * tags that wait for them, then drops them here. Waits for a later call while a local job runs
   * (it finishes here) or Redis does not answer; failed jobs stay for `berth queue`.
   */
  async moveLocal(): Promise<number> {
    if (this.moving) return 0;
    this.moving = true;
    try {
      const c = await this.own.counts();
      if (c.running > 0 || c.pending === 0) return 0;
      const jobs = (await this.own.list()).filter((j) => j.state === 'pending');
      const byId = new Map(jobs.map((j) => [j.id, j]));
      for (const j of dependencyOrder(jobs)) {
        if (j.kind === 'blob') await this.shared.enqueueBlob(j.upstream, j.repository, j.digest);
        else if (j.kind === 'manifest') {
          const children = j.waitingFor.flatMap((id) => {
            const c = byId.get(id);
            return c && c.kind !== 'tag' ? [{ kind: c.kind, digest: c.digest }] : [];
          });
          await this.shared.enqueueManifest(j.upstream, j.repository, j.digest, children);
        } else await this.shared.enqueueManifest(j.upstream, j.repository, j.digest, [], { tag: j.tag!, baseDigest: j.baseDigest });
      }
      // Only now: every moved job is in the site's queue.
      for (const j of jobs) await this.own.drop(j.id);
      if (jobs.length > 0) this.logger.info({ jobs: jobs.length }, "write-behind jobs queued while Redis was away moved to the site's queue");
      return jobs.length;
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'local write-behind jobs not moved yet');
      return 0;
    } finally {
      this.moving = false;
    }
  }
}

/** Jobs with everything they wait for first (depth first, in id order). */
function dependencyOrder(jobs: readonly JobView[]): JobView[] {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const seen = new Set<number>();
  const out: JobView[] = [];
  const visit = (j: JobView) => {
    if (seen.has(j.id)) return;
    seen.add(j.id);
    for (const id of j.waitingFor) {
      const dep = byId.get(id);
      if (dep) visit(dep);
    }
    out.push(j);
  };
  for (const j of [...jobs].sort((a, b) => a.id - b.id)) visit(j);
  return out;
}

/** Held tags of the site, and this replica's own while Redis is away (moved with their jobs). */
export class SiteHeldTags implements HeldTags {
  constructor(
    private readonly shared: HeldTags,
    private readonly own: HeldTags,
    private readonly logger: Logger,
  ) {}

  private async site<T>(what: string, step: () => Promise<T>): Promise<T | undefined> {
    try {
      return await step();
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, `${what}: site held tags unreachable`);
      return undefined;
    }
  }

  async hold(upstream: string, repository: string, tag: string, digest: string, reason: HoldReason): Promise<void> {
    const ok = await this.site('hold', async () => {
      await this.shared.hold(upstream, repository, tag, digest, reason);
      return true;
    });
    if (!ok) await this.own.hold(upstream, repository, tag, digest, reason);
  }

  async release(upstream: string, repository: string, tag: string): Promise<void> {
    await this.own.release(upstream, repository, tag);
    await this.site('release', () => this.shared.release(upstream, repository, tag));
  }

  async releaseTagsOf(upstream: string, repository: string, digest: string): Promise<void> {
    await this.own.releaseTagsOf(upstream, repository, digest);
    await this.site('release', () => this.shared.releaseTagsOf(upstream, repository, digest));
  }

  async isHeld(upstream: string, repository: string, tag: string): Promise<boolean> {
    return (await this.own.isHeld(upstream, repository, tag)) || ((await this.site('lookup', () => this.shared.isHeld(upstream, repository, tag))) ?? false);
  }

  /** This replica's own hold first: it was taken while the site could not be told. */
  async heldDigest(upstream: string, repository: string, tag: string): Promise<string | undefined> {
    return (await this.own.heldDigest(upstream, repository, tag)) ?? (await this.site('lookup', () => this.shared.heldDigest(upstream, repository, tag)));
  }

  async heldTags(upstream: string, repository: string): Promise<string[]> {
    const shared = (await this.site('list', () => this.shared.heldTags(upstream, repository))) ?? [];
    return [...new Set([...(await this.own.heldTags(upstream, repository)), ...shared])].sort();
  }
}
