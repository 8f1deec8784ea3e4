/** @module cluster/redis-hub-state — the hub's state in Redis (with `redis:` under a hub): jobs, parts, sites' reports, the job id sequence, shared by the hubs on it. */
import type { Redis } from 'ioredis';
import { overloaded } from '../oci/error-catalogue.js';
import type { HeldSet, HubState, HubWrite, InboxEntry, StoredJob, StoredPart, StoredSite } from '../ports/hub-state.js';

/** Every key of the hubs' state starts with this (site replicas use `berth:<site>:`, so no site name can collide). */
export const HUB_KEY_PREFIX = 'berth-hub:';

/** A write is applied only while this key holds this value: a hub that lost the lead cannot overwrite its successor's state. */
export interface HubFence {
  readonly key: string;
  readonly value: string;
}

/** When the fence no longer holds, the caller stopped being the lead: 503, and the site or Harbor asks again (reaching the new lead). */
function fencedOut(): Error {
  return overloaded('this hub no longer holds the lead in Redis; another hub answers now, retry shortly', 1);
}

// Every command of one write runs inside one script: applied whole or not at all, and only
// while the writer still holds the lead. Values are strings throughout (cjson keeps them exact).
const APPLY = `
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ops = cjson.decode(ARGV[2])
for _, op in ipairs(ops) do redis.call(unpack(op)) end
return 1
`;

// The counter holds the last id handed out; a missing counter starts at the floor.
const NEXT_ID = `
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], tonumber(ARGV[1]) - 1) end
return redis.call('INCR', KEYS[1])
`;

// A site's held set replaces the previous one whole, under the same fence as every write.
const PUT_HELD = `
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'hash', ARGV[2], 'at', ARGV[3], 'count', ARGV[4], 'digests', ARGV[5])
return 1
`;

/** Fields per HSET: bounded so no script call exceeds Lua's argument limit. */
const FIELDS_PER_OP = 500;

export class RedisHubState implements HubState {
  private readonly keys: {
    seq: string;
    jobs: string;
    sites: string;
    seen: string;
    inbox: string;
    firstSeen: string;
    parts: (job: number) => string;
    pending: (job: number) => string;
    held: (site: string) => string;
  };

  constructor(
    private readonly redis: Redis,
    prefix = HUB_KEY_PREFIX,
    private readonly fence: () => HubFence | undefined = () => undefined,
  ) {
    this.keys = {
      seq: `${prefix}seq`,
      jobs: `${prefix}jobs`,
      sites: `${prefix}sites`,
      // Last-poll times of sites whose report did not change, beside the report (load takes the later).
      seen: `${prefix}seen`,
      // Results taken by a hub not leading while no lead answered: one JSON entry each, the lead applies them.
      inbox: `${prefix}inbox`,
      firstSeen: `${prefix}first-seen`,
      parts: (job) => `${prefix}parts:${job}`,
      held: (site) => `${prefix}held:${site}`,
      // A fan-out's sites as one list: a part not in parts:<id> yet is pending.
      pending: (job) => `${prefix}pending:${job}`,
    };
  }

  async nextJobId(floor: number): Promise<number> {
    return Number(await this.redis.eval(NEXT_ID, 1, this.keys.seq, String(floor)));
  }

  async write(w: HubWrite): Promise<void> {
    const ops: string[][] = [];
    const hset = (key: string, pairs: string[]) => {
      for (let i = 0; i < pairs.length; i += FIELDS_PER_OP * 2) ops.push(['HSET', key, ...pairs.slice(i, i + FIELDS_PER_OP * 2)]);
    };
    if (w.sites?.length) {
      hset(
        this.keys.sites,
        w.sites.flatMap((s) => [s.name, JSON.stringify({ report: s.report, at: s.at })]),
      );
      // The first report's time stays: HSETNX never overwrites it.
      for (const s of w.sites) ops.push(['HSETNX', this.keys.firstSeen, s.name, String(s.firstSeen)]);
    }
    // A sorted set updated only upward (GT): a late batch never moves a site's time back.
    for (let i = 0; i < (w.seen?.length ?? 0); i += FIELDS_PER_OP)
      ops.push(['ZADD', this.keys.seen, 'GT', ...w.seen!.slice(i, i + FIELDS_PER_OP).flatMap((s) => [String(s.at), s.name])]);
    if (w.jobs?.length)
      hset(
        this.keys.jobs,
        w.jobs.flatMap((j) => [String(j.id), JSON.stringify(j)]),
      );
    // One JSON string a line; a later list for the same job (a write taken in the middle of a fan-out) adds to the earlier.
    for (const { job, sites } of w.pendingParts ?? []) ops.push(['APPEND', this.keys.pending(job), sites.map((site) => `${JSON.stringify(site)}\n`).join('')]);
    const byJob = new Map<number, string[]>();
    for (const { job, part } of w.parts ?? []) {
      let pairs = byJob.get(job);
      if (!pairs) byJob.set(job, (pairs = []));
      pairs.push(part.site, JSON.stringify(part));
    }
    for (const [job, pairs] of byJob) hset(this.keys.parts(job), pairs);
    for (const id of w.deleteJobs ?? []) {
      ops.push(['HDEL', this.keys.jobs, String(id)]);
      ops.push(['DEL', this.keys.parts(id), this.keys.pending(id)]);
    }
    if (ops.length === 0) return;
    const fence = this.fence();
    const applied = await this.redis.eval(APPLY, 1, fence?.key ?? this.keys.seq, fence?.value ?? '', JSON.stringify(ops));
    if (Number(applied) !== 1) throw fencedOut();
  }

  async load(): Promise<{ sites: StoredSite[]; jobs: Array<StoredJob & { parts: StoredPart[] }> }> {
    const [rawSites, seenPairs, firstSeen, rawJobs] = await Promise.all([
      this.redis.hgetall(this.keys.sites),
      this.redis.zrange(this.keys.seen, 0, -1, 'WITHSCORES'),
      this.redis.hgetall(this.keys.firstSeen),
      this.redis.hgetall(this.keys.jobs),
    ]);
    const seen: Record<string, string> = {};
    for (let i = 0; i + 1 < seenPairs.length; i += 2) seen[seenPairs[i]!] = seenPairs[i + 1]!;
    const sites = Object.keys(rawSites)
      .sort()
      .map((name) => {
        const { report, at } = JSON.parse(rawSites[name]!) as { report: Record<string, unknown>; at: number };
        return { name, report, at: Math.max(at, Number(seen[name] ?? 0)), firstSeen: Number(firstSeen[name] ?? at) };
      });
    const jobs = Object.values(rawJobs)
      .map((text) => JSON.parse(text) as StoredJob)
      .sort((a, b) => a.id - b.id);
    const pipeline = this.redis.pipeline();
    for (const j of jobs) pipeline.hgetall(this.keys.parts(j.id)).get(this.keys.pending(j.id));
    const answers = jobs.length > 0 ? ((await pipeline.exec()) ?? []) : [];
    return {
      sites,
      jobs: jobs.map((j, i) => {
        const [err, raw] = answers[2 * i] ?? [null, {}];
        const [pendingErr, pendingText] = answers[2 * i + 1] ?? [null, null];
        if (err) throw err;
        if (pendingErr) throw pendingErr;
        const parts = new Map(Object.entries(raw as Record<string, string>).map(([site, text]) => [site, JSON.parse(text) as StoredPart]));
        for (const line of String(pendingText ?? '').split('\n')) {
          const site = line === '' ? '' : (JSON.parse(line) as string);
          if (site !== '' && !parts.has(site)) parts.set(site, pendingPart(site));
        }
        return { ...j, parts: [...parts.values()].sort((a, b) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0)) };
      }),
    };
  }

  async heldHash(site: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.held(site), 'hash')) ?? undefined;
  }

  async putHeld(site: string, set: HeldSet): Promise<void> {
    const fence = this.fence();
    const args = [fence?.key ?? this.keys.seq, this.keys.held(site), fence?.value ?? '', set.hash, String(set.at), String(set.count), set.digests];
    if (Number(await this.redis.eval(PUT_HELD, 2, ...args)) !== 1) throw fencedOut();
  }

  async held(site: string): Promise<HeldSet | undefined> {
    const raw = await this.redis.hgetallBuffer(this.keys.held(site));
    if (!raw['hash'] || !raw['digests']) return undefined;
    return { hash: raw['hash'].toString(), at: Number(raw['at']?.toString()), count: Number(raw['count']?.toString()), digests: raw['digests'] };
  }

  /** Not fenced: any hub may leave results for the lead (the lead checks each against its parts). */
  async addToInbox(entry: InboxEntry): Promise<void> {
    await this.redis.rpush(this.keys.inbox, JSON.stringify(entry));
  }

  async inbox(max: number): Promise<{ entries: InboxEntry[]; done(): Promise<void> }> {
    const raw = await this.redis.lrange(this.keys.inbox, 0, max - 1);
    const entries = raw.flatMap((text) => {
      try {
        return [JSON.parse(text) as InboxEntry];
      } catch {
        return [];
      }
    });
    // Only the lead takes entries and others only append, so the first n are still the ones read.
    return {
      entries,
      done: async () => {
        if (raw.length > 0) await this.redis.ltrim(this.keys.inbox, raw.length, -1);
      },
    };
  }

  async inboxLength(): Promise<number> {
    return this.redis.llen(this.keys.inbox);
  }

  /** The connection belongs to whoever opened it (the hub's lead election shares it). */
  async close(): Promise<void> {}
}

function pendingPart(site: string): StoredPart {
  return { site, state: 'pending', error: null, digest: null, bytesFetched: 0, bytesTotal: 0, finishedAt: null };
}
