/** @module cluster/redis-queue-lua — the replication queue's atomic steps as Lua scripts (one script, one step, whatever the other replicas do). */

/**
 * Keys, under the site prefix P (ARGV[1]): q:seq (job ids), q:job:<id> (a hash per job), q:all
 * (every id), q:item:<u,r,kind,digest> (the unfinished job of a blob or manifest), q:tags:<u,r,tag>
 * (tag jobs of a tag), q:deps:<id> / q:rdeps:<id> (what a job waits for / what waits for it),
 * q:due:<u> (pending jobs by next attempt), q:running (by lease end), q:failed, q:digests (jobs per
 * digest, for eviction protection), held:<u,r> (held tags: tag -> {digest, reason, createdAt}).
 * Keys are built inside the scripts: berth needs one Redis (or a Sentinel-managed primary), not a
 * Redis Cluster.
 */
const PRELUDE = `
local P = ARGV[1]
local SEP = string.char(0)
local function jk(id) return P .. 'q:job:' .. id end
local function ik(u, r, kind, d) return P .. 'q:item:' .. u .. SEP .. r .. SEP .. kind .. SEP .. d end
local function tk(u, r, t) return P .. 'q:tags:' .. u .. SEP .. r .. SEP .. t end
local function hk(u, r) return P .. 'held:' .. u .. SEP .. r end
local function insert(u, r, kind, d, tag, base, now)
  local id = redis.call('INCR', P .. 'q:seq')
  redis.call('HSET', jk(id), 'id', id, 'upstream', u, 'repository', r, 'kind', kind, 'digest', d, 'tag', tag, 'baseDigest', base,
    'state', 'pending', 'attempts', 0, 'nextAttemptAt', now, 'lastError', '', 'transient', 0, 'createdAt', now, 'updatedAt', now,
    'owner', '', 'leaseUntil', '')
  redis.call('ZADD', P .. 'q:all', id, id)
  redis.call('ZADD', P .. 'q:due:' .. u, now, id)
  redis.call('HINCRBY', P .. 'q:digests', d, 1)
  if kind == 'tag' then redis.call('SADD', tk(u, r, tag), id) else redis.call('SET', ik(u, r, kind, d), id) end
  return id
end
local function ensure(u, r, kind, d, now)
  local id = redis.call('GET', ik(u, r, kind, d))
  if id then return tonumber(id) end
  return insert(u, r, kind, d, '', '', now)
end
local function need(job, needs)
  if job ~= needs then
    redis.call('SADD', P .. 'q:deps:' .. job, needs)
    redis.call('SADD', P .. 'q:rdeps:' .. needs, job)
  end
end
local function release_held(u, r, tag, d)
  local v = redis.call('HGET', hk(u, r), tag)
  if v then
    local h = cjson.decode(v)
    if h.digest == d and h.reason == 'replicating' then redis.call('HDEL', hk(u, r), tag) end
  end
end
-- Removes a job and every dependency edge touching it; returns its hash (flat), or false.
local function remove(id)
  local row = redis.call('HGETALL', jk(id))
  if #row == 0 then return false end
  local j = {}
  for i = 1, #row, 2 do j[row[i]] = row[i + 1] end
  for _, n in ipairs(redis.call('SMEMBERS', P .. 'q:deps:' .. id)) do redis.call('SREM', P .. 'q:rdeps:' .. n, id) end
  for _, w in ipairs(redis.call('SMEMBERS', P .. 'q:rdeps:' .. id)) do redis.call('SREM', P .. 'q:deps:' .. w, id) end
  redis.call('DEL', P .. 'q:deps:' .. id, P .. 'q:rdeps:' .. id, jk(id))
  redis.call('ZREM', P .. 'q:all', id)
  redis.call('ZREM', P .. 'q:due:' .. j.upstream, id)
  redis.call('ZREM', P .. 'q:running', id)
  redis.call('SREM', P .. 'q:failed', id)
  if redis.call('HINCRBY', P .. 'q:digests', j.digest, -1) <= 0 then redis.call('HDEL', P .. 'q:digests', j.digest) end
  if j.kind == 'tag' then
    redis.call('SREM', tk(j.upstream, j.repository, j.tag), id)
  elseif redis.call('GET', ik(j.upstream, j.repository, j.kind, j.digest)) == tostring(id) then
    redis.call('DEL', ik(j.upstream, j.repository, j.kind, j.digest))
  end
  return j, row
end
local function to_pending(id, next)
  local u = redis.call('HGET', jk(id), 'upstream')
  redis.call('HSET', jk(id), 'state', 'pending', 'owner', '', 'leaseUntil', '')
  redis.call('ZREM', P .. 'q:running', id)
  redis.call('SREM', P .. 'q:failed', id)
  redis.call('ZADD', P .. 'q:due:' .. u, next, id)
end
`;

const script = (body: string) => PRELUDE + body;

/** ARGV: P now. */
export const ENQUEUE_BLOB = script(`return ensure(ARGV[3], ARGV[4], 'blob', ARGV[5], tonumber(ARGV[2]))`);

/** ARGV: P now u r digest tag base (kind digest)... ; returns {manifestJob, tagJob or 0}. */
export const ENQUEUE_MANIFEST = script(`
local now, u, r, d, tag, base = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local fresh = redis.call('EXISTS', ik(u, r, 'manifest', d)) == 0
local m = ensure(u, r, 'manifest', d, now)
if fresh then for i = 8, #ARGV - 1, 2 do need(m, ensure(u, r, ARGV[i], ARGV[i + 1], now)) end end
if tag == '' then return {m, 0} end
local older = redis.call('SMEMBERS', tk(u, r, tag))
local t = insert(u, r, 'tag', d, tag, base, now)
for _, o in ipairs(older) do
  if redis.call('HGET', jk(o), 'state') == 'running' then need(t, tonumber(o)) else remove(o) end
end
need(t, m)
redis.call('HSET', hk(u, r), tag, cjson.encode({digest = d, reason = 'replicating', createdAt = now}))
return {m, t}`);

/** ARGV: P now u limit owner leaseUntil; returns the claimed jobs' hashes, oldest first. */
export const CLAIM = script(`
local now, u, limit, owner, lease = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local ready = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'q:due:' .. u, '-inf', now)) do
  if redis.call('SCARD', P .. 'q:deps:' .. id) == 0 then table.insert(ready, tonumber(id)) end
end
table.sort(ready)
local out = {}
for i = 1, math.min(limit, #ready) do
  local id = ready[i]
  redis.call('ZREM', P .. 'q:due:' .. u, id)
  redis.call('ZADD', P .. 'q:running', lease, id)
  redis.call('HSET', jk(id), 'state', 'running', 'owner', owner, 'leaseUntil', lease, 'updatedAt', now)
  table.insert(out, redis.call('HGETALL', jk(id)))
end
return out`);

/** ARGV: P owner leaseUntil id... */
export const RENEW = script(`
for i = 4, #ARGV do
  local s = redis.call('HMGET', jk(ARGV[i]), 'state', 'owner')
  if s[1] == 'running' and s[2] == ARGV[2] then
    redis.call('HSET', jk(ARGV[i]), 'leaseUntil', ARGV[3])
    redis.call('ZADD', P .. 'q:running', ARGV[3], ARGV[i])
  end
end
return 1`);

/** ARGV: P id kind digest. Done: the job goes, and a tag stops being held unless a newer push holds it. */
export const COMPLETE = script(`
local j = remove(ARGV[2])
if j and ARGV[3] == 'tag' and j.digest == ARGV[4] and redis.call('SCARD', tk(j.upstream, j.repository, j.tag)) == 0 then
  release_held(j.upstream, j.repository, j.tag, j.digest)
end
return 1`);

/** ARGV: P id now state nextAttemptAt error transient. */
export const FAIL = script(`
local id = ARGV[2]
if redis.call('HGET', jk(id), 'state') ~= 'running' then return 0 end
redis.call('HINCRBY', jk(id), 'attempts', 1)
if ARGV[7] ~= '1' then redis.call('HINCRBY', jk(id), 'refusals', 1) end
redis.call('HSET', jk(id), 'nextAttemptAt', ARGV[5], 'lastError', ARGV[6], 'transient', ARGV[7], 'updatedAt', ARGV[3])
if ARGV[4] == 'failed' then
  redis.call('HSET', jk(id), 'state', 'failed', 'owner', '', 'leaseUntil', '')
  redis.call('ZREM', P .. 'q:running', id)
  redis.call('SADD', P .. 'q:failed', id)
else
  to_pending(id, ARGV[5])
end
return 1`);

/** ARGV: P owner now: the owner's running jobs and lapsed leases are due again. */
export const RECOVER = script(`
local n = 0
local flat = redis.call('ZRANGE', P .. 'q:running', 0, -1, 'WITHSCORES')
for i = 1, #flat, 2 do
  local id, lease = flat[i], tonumber(flat[i + 1])
  local h = redis.call('HMGET', jk(id), 'owner', 'nextAttemptAt')
  if h[1] == false or h[1] == '' or h[1] == ARGV[2] or lease <= tonumber(ARGV[3]) then
    if h[2] then to_pending(id, h[2]) else redis.call('ZREM', P .. 'q:running', id) end
    n = n + 1
  end
end
return n`);

/** ARGV: P u now. */
export const WAKE = script(`
local n = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'q:due:' .. ARGV[2], '(' .. ARGV[3], '+inf')) do
  if redis.call('HGET', jk(id), 'transient') == '1' then
    redis.call('HSET', jk(id), 'nextAttemptAt', ARGV[3])
    redis.call('ZADD', P .. 'q:due:' .. ARGV[2], ARGV[3], id)
    n = n + 1
  end
end
return n`);

/** ARGV: P; every job with what it waits for: {hash, deps}... */
export const LIST = script(`
local out = {}
for _, id in ipairs(redis.call('ZRANGE', P .. 'q:all', 0, -1)) do
  table.insert(out, {redis.call('HGETALL', jk(id)), redis.call('SMEMBERS', P .. 'q:deps:' .. id)})
end
return out`);

/** ARGV: P id now. */
export const RETRY = script(`
local s = redis.call('HGET', jk(ARGV[2]), 'state')
if not s or s == 'running' then return 0 end
redis.call('HSET', jk(ARGV[2]), 'attempts', 0, 'refusals', 0, 'nextAttemptAt', ARGV[3], 'updatedAt', ARGV[3])
to_pending(ARGV[2], ARGV[3])
return 1`);

/** ARGV: P id; returns the dropped job's hash (flat) or an empty list. */
export const DROP = script(`
local j, row = remove(ARGV[2])
if not j then return {} end
if j.kind == 'tag' then release_held(j.upstream, j.repository, j.tag, j.digest) end
return row`);

/** ARGV: P; {pending, running, failed}. */
export const COUNTS = script(`
local all, running, failed = redis.call('ZCARD', P .. 'q:all'), redis.call('ZCARD', P .. 'q:running'), redis.call('SCARD', P .. 'q:failed')
return {all - running - failed, running, failed}`);

/** ARGV: P u r digest: releases every tag of the repository that points at the digest. */
export const RELEASE_TAGS_OF = script(`
local flat = redis.call('HGETALL', hk(ARGV[2], ARGV[3]))
for i = 1, #flat, 2 do
  if cjson.decode(flat[i + 1]).digest == ARGV[4] then redis.call('HDEL', hk(ARGV[2], ARGV[3]), flat[i]) end
end
return 1`);

/** The key of a repository's held tags, as the scripts build it. */
export const heldKey = (prefix: string, upstream: string, repository: string): string => `${prefix}held:${upstream}\u0000${repository}`;
