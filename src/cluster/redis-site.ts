/** @module cluster/redis-site — the Redis implementation of every role of the site ports: one key prefix per site, atomic steps as Lua scripts. */
import type { Redis } from 'ioredis';
import { siteKeyPrefix } from './redis.js';
import type { FillLease, Member, SharedTag, SiteCoordination } from '../ports/site.js';

// Membership uses Redis's clock, so replicas with skewed clocks still agree on who is alive.
const HEARTBEAT = `local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], 3600000)
return 1`;
const MEMBERS = `local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')`;
// A lease is "token owner"; the token counter only grows (fencing).
const ACQUIRE = `local v = redis.call('GET', KEYS[1])
if v and (ARGV[3] == '' or string.sub(v, string.find(v, ' ') + 1) ~= ARGV[3]) then return {0, v} end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], t .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {1, t .. ' ' .. ARGV[1]}`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** Holder sets and tag records outlive no blob for long: a forgotten set expires after this. */
const RECORD_TTL_S = 30 * 24 * 3600;

/** Membership, fill leases, holders, tag records and upload owners on one connection. */
export class RedisSite implements SiteCoordination {
  private readonly p: string;

  /** `site` is the key prefix (cluster.name): replicas with the same name form one site. */
  constructor(
    private readonly redis: Redis,
    readonly self: string,
    site: string,
    private readonly ownsClient = true,
  ) {
    this.p = siteKeyPrefix(site);
  }

  async heartbeat(ttlMs: number): Promise<void> {
    await this.redis.eval(HEARTBEAT, 1, `${this.p}members`, this.self, ttlMs);
  }
  async leave(): Promise<void> {
    await this.redis.zrem(`${this.p}members`, this.self);
  }
  async members(): Promise<Member[]> {
    const flat = (await this.redis.eval(MEMBERS, 1, `${this.p}members`)) as string[];
    const out: Member[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ url: flat[i]!, until: Number(flat[i + 1]) });
    return out;
  }

  private lease(digest: string, value: string): FillLease {
    const space = value.indexOf(' ');
    return { digest, token: Number(value.slice(0, space)), owner: value.slice(space + 1) };
  }
  private async grant(digest: string, ttlMs: number, from: string): Promise<[number, string]> {
    return (await this.redis.eval(ACQUIRE, 2, `${this.p}fill:${digest}`, `${this.p}fencing`, this.self, ttlMs, from)) as [number, string];
  }
  async acquireFill(digest: string, ttlMs: number): Promise<{ lease: FillLease } | { owner: string }> {
    const [won, value] = await this.grant(digest, ttlMs, '');
    const lease = this.lease(digest, value);
    return won === 1 ? { lease } : { owner: lease.owner };
  }
  async takeOverFill(digest: string, owner: string, ttlMs: number): Promise<FillLease | undefined> {
    const [won, value] = await this.grant(digest, ttlMs, owner);
    return won === 1 ? this.lease(digest, value) : undefined;
  }
  async renewFill(lease: FillLease, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, `${this.p}fill:${lease.digest}`, `${lease.token} ${lease.owner}`, ttlMs)) === 1;
  }
  async releaseFill(lease: FillLease): Promise<void> {
    await this.redis.eval(RELEASE, 1, `${this.p}fill:${lease.digest}`, `${lease.token} ${lease.owner}`);
  }
  async fillOwner(digest: string): Promise<string | undefined> {
    const v = await this.redis.get(`${this.p}fill:${digest}`);
    return v === null ? undefined : this.lease(digest, v).owner;
  }

  async addHolder(digest: string): Promise<void> {
    const key = `${this.p}holders:${digest}`;
    await this.redis.multi().sadd(key, this.self).expire(key, RECORD_TTL_S).exec();
  }
  async addHolders(digests: readonly string[]): Promise<void> {
    for (let i = 0; i < digests.length; i += 500) {
      const batch = this.redis.pipeline();
      for (const d of digests.slice(i, i + 500)) batch.sadd(`${this.p}holders:${d}`, this.self).expire(`${this.p}holders:${d}`, RECORD_TTL_S);
      const results = await batch.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0]!;
    }
  }
  async removeHolder(digest: string): Promise<void> {
    await this.redis.srem(`${this.p}holders:${digest}`, this.self);
  }
  async holders(digest: string): Promise<string[]> {
    return this.redis.smembers(`${this.p}holders:${digest}`);
  }

  private tagKey(kind: string, u: string, r: string, t: string): string {
    return `${this.p}${kind}:${JSON.stringify([u, r, t])}`;
  }
  async tag(u: string, r: string, t: string): Promise<SharedTag | undefined> {
    const h = await this.redis.hgetall(this.tagKey('tag', u, r, t));
    return h['digest'] !== undefined ? { digest: h['digest'], checkedAt: Number(h['checkedAt']) } : undefined;
  }
  async putTag(u: string, r: string, t: string, record: SharedTag): Promise<void> {
    const key = this.tagKey('tag', u, r, t);
    await this.redis
      .multi()
      .hset(key, { digest: record.digest, checkedAt: String(record.checkedAt) })
      .expire(key, RECORD_TTL_S)
      .exec();
  }
  async claimTagCheck(u: string, r: string, t: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.tagKey('tagcheck', u, r, t), this.self, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async recordUpload(id: string, ttlMs: number): Promise<void> {
    await this.redis.set(`${this.p}upload:${id}`, this.self, 'PX', ttlMs);
  }
  async forgetUpload(id: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, `${this.p}upload:${id}`, this.self);
  }
  async uploadOwner(id: string): Promise<string | undefined> {
    return (await this.redis.get(`${this.p}upload:${id}`)) ?? undefined;
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.redis.disconnect();
  }
}
