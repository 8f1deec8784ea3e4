/** @module cluster/redis-hub-state.test — the Redis hub state through the same hub state contract as SQLite, on a real redis-server; and its fence. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { hubStateContract } from '../ports/contract/hub-state-contract.js';
import { startRedis, type RedisServer } from '../../test/fixtures/redis.js';
import { RedisHubState } from './redis-hub-state.js';

let server: RedisServer;
let states = 0;
before(async () => {
  server = await startRedis();
});
after(async () => {
  await server.stop();
});

const connect = () => new Redis({ host: '127.0.0.1', port: server.port, commandTimeout: 2_000, maxRetriesPerRequest: 0 });

hubStateContract('redis', async () => {
  // A fresh prefix per case stands in for an empty Redis.
  const prefix = `test-hub-${++states}:`;
  const opened = [connect()];
  return {
    state: new RedisHubState(opened[0]!, prefix),
    // A restarted hub opens a connection of its own; the old one is dropped, as a killed process's is.
    reopen: async () => {
      const next = connect();
      opened.push(next);
      return new RedisHubState(next, prefix);
    },
    close: async () => {
      for (const r of opened) r.disconnect();
    },
  };
});

test('a write fenced by a lead key applies only while the key holds the writer’s value, whole or not at all', async () => {
  const redis = connect();
  try {
    const prefix = `test-hub-fence-${++states}:`;
    let fence = { key: `${prefix}lead`, value: 'hub-a 1' };
    await redis.set(fence.key, 'hub-a 1');
    const state = new RedisHubState(redis, prefix, () => fence);
    const job = { id: 1, image: 'a/b:c', digest: null, source: 'api', selector: '', url: 'a/b:c', createdAt: 1, finishedAt: null, error: null };
    await state.write({ jobs: [job] });
    fence = { key: fence.key, value: 'hub-a 0' };
    await assert.rejects(state.write({ jobs: [{ ...job, id: 2 }], deleteJobs: [1] }), { code: 'UNAVAILABLE' });
    assert.deepEqual(
      (await state.load()).jobs.map((j) => j.id),
      [1],
      'nothing of the refused write applied',
    );
  } finally {
    redis.disconnect();
  }
});

test('results left in the inbox by hubs not leading are read oldest first and dropped once applied; later ones stay', async () => {
  const redis = connect();
  try {
    const state = new RedisHubState(redis, `test-hub-inbox-${++states}:`);
    await state.addToInbox({ site: 's-1', results: [{ taskId: '1/s-1', ok: true }] });
    await state.addToInbox({ site: 's-2', results: [{ taskId: '1/s-2', ok: false, error: 'denied' }] });
    const first = await state.inbox(10);
    assert.deepEqual(
      first.entries.map((e) => e.site),
      ['s-1', 's-2'],
    );
    await state.addToInbox({ site: 's-3', results: [{ taskId: '1/s-3', ok: true }] });
    await first.done();
    const second = await state.inbox(10);
    assert.deepEqual(second.entries, [{ site: 's-3', results: [{ taskId: '1/s-3', ok: true }] }]);
  } finally {
    redis.disconnect();
  }
});
