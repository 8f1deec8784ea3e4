/** @module cluster/site-queue.test — Redis away: write-behind jobs queue locally (negative ids) and move to the site's queue, dependencies kept, when it answers again. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startRedis, type RedisServer } from '../../test/fixtures/redis.js';
import { openLocalPush } from '../storage/local.js';
import { RedisHeldTags, RedisReplicationQueue } from './redis-queue.js';
import { SiteHeldTags, SiteQueue } from './site-queue.js';

const d = (n: number) => `sha256:${String(n).padStart(64, '0')}`;
const by = { owner: 'http://a', leaseMs: 10_000 };
let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(async () => {
  await server.stop();
});

test('Redis away: a push queues on this replica; Redis back: the jobs move to the site queue in order and the tag stays held throughout', async () => {
  const root = mkdtempSync(join(tmpdir(), 'berth-site-queue-'));
  const local = openLocalPush(root, Date.now);
  const redis = new Redis({
    host: '127.0.0.1',
    port: server.port,
    commandTimeout: 1_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => 100,
  });
  const logger = pino({ level: 'silent' });
  const queue = new SiteQueue(new RedisReplicationQueue(redis, 'sq', Date.now), local.queue, logger);
  const held = new SiteHeldTags(new RedisHeldTags(redis, 'sq', Date.now), local.heldTags, logger);
  try {
    await new Promise((resolve) => redis.once('ready', resolve));
    redis.on('error', () => undefined);
    await server.kill();
    // Disconnected: every Redis command fails at once, as while Redis is unreachable.
    const blob = await queue.enqueueBlob('u', 'r', d(1));
    const { manifestJob, tagJob } = await queue.enqueueManifest('u', 'r', d(9), [{ kind: 'blob', digest: d(1) }], { tag: 'v1', baseDigest: null });
    assert.ok(blob < 0 && manifestJob < 0 && tagJob! < 0, 'local jobs carry negative ids');
    assert.equal(await held.heldDigest('u', 'r', 'v1'), d(9), 'held on this replica');
    assert.deepEqual(await queue.counts(), { pending: 3, running: 0, failed: 0 });
    assert.ok(await queue.needs(d(9)));
    assert.equal(await queue.moveLocal(), 0, 'nothing moves while Redis is away');

    await server.up();
    await new Promise((resolve) => redis.once('ready', resolve));
    assert.equal(await queue.moveLocal(), 3);
    assert.deepEqual(await local.queue.list(), [], 'the local queue is empty once the site queue has every job');
    const moved = await queue.list();
    assert.ok(
      moved.every((j) => j.id > 0),
      'all in the site queue now',
    );
    assert.equal(await held.heldDigest('u', 'r', 'v1'), d(9), 'held by the site now');
    assert.equal(await local.heldTags.isHeld('u', 'r', 'v1'), false);
    // Dependency order survived the move: blob, then manifest, then tag.
    const order: string[] = [];
    for (let jobs = await queue.claim('u', 10, by); jobs.length > 0; jobs = await queue.claim('u', 10, by)) {
      for (const j of jobs) {
        order.push(j.kind);
        await queue.complete(j);
      }
    }
    assert.deepEqual(order, ['blob', 'manifest', 'tag']);
    assert.equal(await held.isHeld('u', 'r', 'v1'), false, 'released once replicated');
  } finally {
    redis.disconnect();
    local.close();
    rmSync(root, { recursive: true, force: true });
  }
});
