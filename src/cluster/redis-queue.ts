/** @module cluster/redis-queue — the Redis implementation of the replication queue and held tags ports: one queue for a site's replicas. */
import type { Redis } from 'ioredis';
import { siteKeyPrefix } from './redis.js';
import type { HeldTags, HoldReason } from '../ports/held-tags.js';
import type { Claimant, Job, JobKind, JobState, JobView, ReplicationQueue } from '../ports/replication-queue.js';
import * as lua from './redis-queue-lua.js';

/** A job's hash as Redis returns it (HGETALL, flat) to the port's Job. */
function toJob(flat: string[]): Job {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  const orNull = (v: string | undefined) => (v === undefined || v === '' ? null : v);
  const num = (v: string | undefined) => Number(v ?? 0);
  return {
    id: num(h['id']),
    upstream: h['upstream'] ?? '',
    repository: h['repository'] ?? '',
    kind: h['kind'] as JobKind,
    digest: h['digest'] ?? '',
    tag: orNull(h['tag']),
    baseDigest: orNull(h['baseDigest']),
    state: h['state'] as JobState,
    attempts: num(h['attempts']),
    refusals: num(h['refusals']),
    nextAttemptAt: num(h['nextAttemptAt']),
    lastError: orNull(h['lastError']),
    transient: h['transient'] === '1' ? 1 : 0,
    createdAt: num(h['createdAt']),
    updatedAt: num(h['updatedAt']),
    owner: orNull(h['owner']),
    leaseUntil: orNull(h['leaseUntil']) === null ? null : num(h['leaseUntil']),
  };
}

/**
 * Every step is one Lua script, so two replicas claiming at once never both get a job, and an
 * enqueue with its tag hold is all or nothing. Times come from the caller's clock (`now`), as
 * with the local queue: replicas' clocks should agree to well within a lease (NTP does).
 */
export class RedisReplicationQueue implements ReplicationQueue {
  private readonly p: string;

  /** `site` is the key prefix (cluster.name), shared with the site's other records. */
  constructor(
    private readonly redis: Redis,
    site: string,
    private readonly now: () => number,
  ) {
    this.p = siteKeyPrefix(site);
  }

  private run(script: string, ...args: Array<string | number>): Promise<unknown> {
    return this.redis.eval(script, 0, this.p, ...args);
  }

  async enqueueBlob(upstream: string, repository: string, digest: string): Promise<number> {
    return Number(await this.run(lua.ENQUEUE_BLOB, this.now(), upstream, repository, digest));
  }

  async enqueueManifest(
    upstream: string,
    repository: string,
    digest: string,
    children: ReadonlyArray<{ kind: 'blob' | 'manifest'; digest: string }>,
    tag?: { tag: string; baseDigest: string | null },
  ): Promise<{ manifestJob: number; tagJob: number | undefined }> {
    const pairs = children.flatMap((c) => [c.kind, c.digest]);
    const [m, t] = (await this.run(lua.ENQUEUE_MANIFEST, this.now(), upstream, repository, digest, tag?.tag ?? '', tag?.baseDigest ?? '', ...pairs)) as [
      number,
      number,
    ];
    return { manifestJob: Number(m), tagJob: t === 0 ? undefined : Number(t) };
  }

  async claim(upstream: string, limit: number, by: Claimant): Promise<Job[]> {
    const now = this.now();
    return ((await this.run(lua.CLAIM, now, upstream, limit, by.owner, now + by.leaseMs)) as string[][]).map(toJob);
  }

  async renew(ids: readonly number[], by: Claimant): Promise<void> {
    if (ids.length > 0) await this.run(lua.RENEW, by.owner, this.now() + by.leaseMs, ...ids);
  }

  async complete(job: Job): Promise<void> {
    await this.run(lua.COMPLETE, job.id, job.kind, job.digest);
  }

  async fail(id: number, error: string, opts: { transient: boolean; nextAttemptAt: number; giveUp: boolean }): Promise<void> {
    await this.run(lua.FAIL, id, this.now(), opts.giveUp ? 'failed' : 'pending', opts.nextAttemptAt, error.slice(0, 1000), opts.transient ? 1 : 0);
  }

  async recover(owner?: string): Promise<number> {
    // '' matches only jobs without an owner, which are free anyway.
    return Number(await this.run(lua.RECOVER, owner ?? '', this.now()));
  }

  async wakeTransient(upstream: string): Promise<number> {
    return Number(await this.run(lua.WAKE, upstream, this.now()));
  }

  async nextDue(upstream: string): Promise<number | undefined> {
    const first = await this.redis.zrange(`${this.p}q:due:${upstream}`, 0, 0, 'WITHSCORES');
    return first.length === 2 ? Number(first[1]) : undefined;
  }

  async list(): Promise<JobView[]> {
    const rows = (await this.run(lua.LIST)) as Array<[string[], string[]]>;
    return rows.map(([h, deps]) => ({ ...toJob(h), waitingFor: deps.map(Number).sort((a, b) => a - b) }));
  }

  async get(id: number): Promise<Job | undefined> {
    const flat = await this.redis.hgetall(`${this.p}q:job:${id}`);
    return Object.keys(flat).length === 0 ? undefined : toJob(Object.entries(flat).flat());
  }

  async retry(id: number): Promise<boolean> {
    return Number(await this.run(lua.RETRY, id, this.now())) === 1;
  }

  async drop(id: number): Promise<Job | undefined> {
    const flat = (await this.run(lua.DROP, id)) as string[];
    return flat.length === 0 ? undefined : toJob(flat);
  }

  async needs(digest: string): Promise<boolean> {
    return (await this.redis.hexists(`${this.p}q:digests`, digest)) === 1;
  }

  async needed(): Promise<Set<string>> {
    return new Set(await this.redis.hkeys(`${this.p}q:digests`));
  }

  async counts(): Promise<{ pending: number; running: number; failed: number }> {
    const [pending, running, failed] = ((await this.run(lua.COUNTS)) as number[]).map(Number) as [number, number, number];
    return { pending, running, failed };
  }
}

/** Held tags beside the queue (same prefix), so an enqueue holds its tag and a completion releases it in the same script. */
export class RedisHeldTags implements HeldTags {
  private readonly p: string;

  constructor(
    private readonly redis: Redis,
    site: string,
    private readonly now: () => number,
  ) {
    this.p = siteKeyPrefix(site);
  }

  private key(upstream: string, repository: string): string {
    return lua.heldKey(this.p, upstream, repository);
  }

  async hold(upstream: string, repository: string, tag: string, digest: string, reason: HoldReason): Promise<void> {
    await this.redis.hset(this.key(upstream, repository), tag, JSON.stringify({ digest, reason, createdAt: this.now() }));
  }

  async release(upstream: string, repository: string, tag: string): Promise<void> {
    await this.redis.hdel(this.key(upstream, repository), tag);
  }

  async releaseTagsOf(upstream: string, repository: string, digest: string): Promise<void> {
    await this.redis.eval(lua.RELEASE_TAGS_OF, 0, this.p, upstream, repository, digest);
  }

  async isHeld(upstream: string, repository: string, tag: string): Promise<boolean> {
    return (await this.redis.hexists(this.key(upstream, repository), tag)) === 1;
  }

  async heldDigest(upstream: string, repository: string, tag: string): Promise<string | undefined> {
    const v = await this.redis.hget(this.key(upstream, repository), tag);
    return v === null ? undefined : (JSON.parse(v) as { digest: string }).digest;
  }

  async heldTags(upstream: string, repository: string): Promise<string[]> {
    return (await this.redis.hkeys(this.key(upstream, repository))).sort();
  }
}
