/** @module cluster/redis-push.test — the Redis replication queue, held tags and upload sessions run through the same contract suites as the local ones, on a real redis-server. */
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { heldTagsContract, replicationQueueContract, uploadSessionsContract } from '../ports/contract/push-ports.js';
import { startRedis, type RedisServer } from '../../test/fixtures/redis.js';
import { RedisHeldTags, RedisReplicationQueue } from './redis-queue.js';
import { RedisUploadSessions } from './redis-uploads.js';

let server: RedisServer;
let sites = 0;
before(async () => {
  server = await startRedis();
});
after(async () => {
  await server.stop();
});

async function redisPush() {
  // A fresh site name per case stands in for a fresh, empty backend.
  const name = `push${++sites}`;
  let t = 1_700_000_000_000;
  const now = () => t;
  const redis = new Redis({ host: '127.0.0.1', port: server.port, commandTimeout: 2_000, maxRetriesPerRequest: 0 });
  return {
    queue: new RedisReplicationQueue(redis, name, now),
    heldTags: new RedisHeldTags(redis, name, now),
    uploads: new RedisUploadSessions(redis, name, now),
    advance: (ms: number) => {
      t += ms;
    },
    close: async () => {
      redis.disconnect();
    },
  };
}

replicationQueueContract('redis', redisPush);
heldTagsContract('redis', redisPush);
uploadSessionsContract('redis', redisPush);
