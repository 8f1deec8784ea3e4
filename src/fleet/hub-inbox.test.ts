/** @module fleet/hub-inbox.test — hub replicas: results a hub not leading left in Redis's inbox after the lead's last drain are applied before that site is handed tasks again (real redis-server). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../../test/fixtures/redis.js';
import { RedisHubState } from '../cluster/redis-hub-state.js';
import { serveHub } from './hub-testkit.js';

const TOKEN = 't'.repeat(32);

let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(async () => {
  await server.stop();
});

test('a site whose results reached the inbox just after the lead drained it is not handed that task again', async () => {
  const redis = new Redis({ host: '127.0.0.1', port: server.port, commandTimeout: 2_000, maxRetriesPerRequest: 0 });
  // A follower's connection of its own, as another hub process has.
  const followerRedis = redis.duplicate();
  const follower = new RedisHubState(followerRedis, 'test-hub-window:');
  const served = await serveHub({ token: TOKEN }, new RedisHubState(redis, 'test-hub-window:'));
  const poll = async (body: Record<string, unknown>) => {
    const r = await fetch(`${served.url}/api/v1/fleet/poll`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ report: { name: 's-1', intervalMs: 60_000 }, results: [], working: [], ...body }),
    });
    assert.equal(r.status, 200);
    return ((await r.json()) as { tasks: Array<{ taskId: string }> }).tasks.map((t) => t.taskId);
  };
  try {
    await served.hub.ready;
    assert.deepEqual(await poll({}), []);
    const { job } = await served.hub.jobs.create({ image: 'library/alpine:3', source: 'api', matches: () => true });
    const taskId = `${job.id}/s-1`;
    assert.deepEqual(await poll({}), [taskId]);
    // The site finished it and its poll reached a hub not leading, which left the results for the lead.
    await follower.addToInbox({ site: 's-1', results: [{ taskId, ok: true, bytesFetched: 10, bytesTotal: 10 }] });
    assert.deepEqual(await poll({}), [], 'the finished task is not handed out again');
    assert.equal(served.hub.jobs.state(job), 'SUCCESS');
    assert.equal(await follower.inboxLength(), 0, 'the inbox is dropped once applied');
  } finally {
    await served.close();
    redis.disconnect();
    followerRedis.disconnect();
  }
});
