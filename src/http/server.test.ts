/** @module http/server.test — the catch-all: a route failing in a way nobody expected answers a 500 envelope with a request id and logs one line with the same id. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { loadConfig } from '../config/load.js';
import { OciError } from '../oci/errors.js';
import type { RegistryCache } from '../cache/registry.js';
import type { PushService } from '../push/push-policy.js';
import { createServer } from './server.js';

let server: Server;
let base: string;
const lines: Array<Record<string, unknown>> = [];
const rejections: unknown[] = [];
const onRejection = (err: unknown) => rejections.push(err);

/** A store that fails every way a bug can: a rejection, a synchronous throw, an error whose answer cannot be written. */
const failingCache = {
  catalog: () => Promise.reject(new Error('metadata.db: disk I/O error')),
  tags: () => {
    throw new TypeError("Cannot read properties of undefined (reading 'tags')");
  },
  manifest: () => Promise.reject(new OciError('MANIFEST_UNKNOWN', 'unknown', { headers: { 'X-Bad': 'line\nbreak' } })),
} as unknown as RegistryCache;

before(async () => {
  process.on('unhandledRejection', onRejection);
  const { config } = loadConfig({ env: {}, cwd: tmpdir() });
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  server = createServer({
    config: { ...config, log: { ...config.log, accesslog: false } },
    cache: failingCache,
    upstreams: [],
    logger: pino({ level: 'info' }, sink),
    push: {} as PushService,
    admin: async (_req, _res, url) => {
      if (url.pathname.startsWith('/api/') || url.pathname === '/metrics') throw new RangeError('admin handler bug');
      return false;
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  process.off('unhandledRejection', onRejection);
  await new Promise((r) => server.close(r));
});

async function fault(method: string, path: string): Promise<void> {
  lines.length = 0;
  const res = await request(`${base}${path}`, { method: method as 'GET', signal: AbortSignal.timeout(10_000) });
  const body = await res.body.text();
  assert.equal(res.statusCode, 500, `${path}: ${body}`);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const first = (JSON.parse(body) as { errors: Array<{ code: string; message: string; detail: { requestId: string } }> }).errors[0]!;
  assert.equal(first.code, 'UNKNOWN');
  assert.match(first.message, new RegExp(`request ${first.detail.requestId}`));
  const logged = lines.filter((l) => Number(l['level']) >= 50);
  assert.equal(logged.length, 1, JSON.stringify(lines));
  assert.equal(logged[0]!['requestId'], first.detail.requestId);
  assert.equal(logged[0]!['path'], path.split('?')[0]);
  assert.ok(logged[0]!['err'], 'the error is in the line');
}

test('a rejected store call: 500 envelope, one log line, the same request id in both', async () => {
  await fault('GET', '/v2/_catalog');
});

test('a synchronous throw inside a route: the same', async () => {
  await fault('GET', '/v2/some/repo/tags/list');
});

test('admin routes and /metrics: the same', async () => {
  await fault('POST', '/api/v1/evict');
  await fault('GET', '/metrics');
});

test('an error whose own answer cannot be written: still a 500 envelope', async () => {
  await fault('GET', '/v2/some/repo/manifests/v1');
});

test('no unhandled rejection came of any of it', () => {
  assert.deepEqual(rejections, []);
});
