/** @module cluster/site.test — the local and Redis implementations of the site ports, run through one contract suite per role (Redis: a real redis-server). */
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import {
  blobHoldersContract,
  fillLeasesContract,
  siteMembershipContract,
  tagRecordsContract,
  uploadOwnersContract,
  type SiteFixture,
} from '../ports/contract/site-contract.js';
import type { SiteCoordination } from '../ports/site.js';
import { LocalSite, LocalSiteBackend } from './local-site.js';
import { RedisSite } from './redis-site.js';
import { startRedis, startSentinel, type RedisServer } from '../../test/fixtures/redis.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { connectRedis } from './redis.js';

/** Every role's suite, each run against every implementation (both implement all roles). */
const roleContracts = [siteMembershipContract, fillLeasesContract, blobHoldersContract, tagRecordsContract, uploadOwnersContract];
const eachRole = (name: string, open: () => Promise<SiteFixture<SiteCoordination>>) => {
  for (const contract of roleContracts) contract(name, open);
};

eachRole('local', async () => {
  const backend = new LocalSiteBackend();
  return { a: new LocalSite('http://a', Date.now, backend), b: new LocalSite('http://b', Date.now, backend), close: async () => {} };
});

let server: RedisServer;
let sites = 0;
before(async () => {
  server = await startRedis();
});
after(async () => {
  await server.stop();
});

eachRole('redis', async () => {
  // A fresh site name per case stands in for a fresh, empty backend.
  const name = `t${++sites}`;
  const redis = new Redis({ host: '127.0.0.1', port: server.port, commandTimeout: 2_000, maxRetriesPerRequest: 0 });
  const a = new RedisSite(redis, 'http://a', name, false);
  const b = new RedisSite(redis, 'http://b', name, false);
  return {
    a,
    b,
    close: async () => {
      redis.disconnect();
    },
  };
});

test('redis: a replica finds Redis through a Sentinel (redis.addrs with mastername)', async () => {
  const sentinel = await startSentinel(server);
  const client = connectRedis(
    { addrs: [{ host: '127.0.0.1', port: sentinel.port }], mastername: 'mymaster', db: 0, connectMs: 2_000, commandMs: 2_000 },
    pino({ level: 'silent' }),
  );
  const site = new RedisSite(client, 'http://s', 'sentinel');
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      setTimeout(() => reject(new Error('no ready through the Sentinel')), 10_000);
    });
    await site.heartbeat(10_000);
    assert.deepEqual(
      (await site.members()).map((m) => m.url),
      ['http://s'],
    );
  } finally {
    await site.close();
    await sentinel.stop();
  }
});
