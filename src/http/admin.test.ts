/** @module http/admin.test — the admin surface's contract: credentials, JSON errors, methods, request validation. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { request } from 'undici';
import type { ImageCatalog } from '../cache/images.js';
import type { WarmJobs, WarmRequest } from '../cache/warm-up.js';
import { createAdminHandler, parseWarmBody } from './admin.js';
import { ApiError } from './admin-io.js';

let server: Server;
let base: string;
let ready = true;
const started: WarmRequest[] = [];

before(async () => {
  const warm = {
    start: (req: WarmRequest) => {
      started.push(req);
      return { id: 'job-1', state: 'running', images: [] };
    },
    list: () => [],
    get: (id: string) => (id === 'job-1' ? { id, state: 'done' } : undefined),
  } as unknown as WarmJobs;
  const catalog = {
    list: async () => [],
    pin: () => ({ digest: 'sha256:x', digests: 1 }),
    evict: async () => ({ digest: 'sha256:x', evicted: 1, freedBytes: 1 }),
  } as unknown as ImageCatalog;
  const handler = createAdminHandler({
    access: { credentials: { username: 'ops', password: 'pw' }, now: () => Date.now() },
    telemetry: {
      metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'berth_x 1\n' }),
      stats: () => ({ ok: 1 }),
      history: { toJSON: () => ({ intervalSeconds: 10, points: [] }) },
    },
    readiness: async () => ({ ready, store: { writable: ready, metadata: true }, upstreams: [] }),
    upstreams: [],
    catalog,
    warm,
    queue: () => [{ digest: 'sha256:q' }],
    logger: pino({ level: 'silent' }),
  });
  server = createServer((req, res) => {
    handler(req, res, new URL(req.url ?? '/', 'http://x')).then(
      (handled) => {
        if (!handled) res.writeHead(418).end();
      },
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((r) => server.close(() => r())));

const auth = { authorization: `Basic ${Buffer.from('ops:pw').toString('base64')}` };
const authJson = { ...auth, 'content-type': 'application/json' };
async function call(method: 'GET' | 'POST' | 'DELETE', path: string, opts: { body?: string; headers?: Record<string, string> } = {}) {
  const res = await request(`${base}${path}`, { method, headers: opts.headers, body: opts.body });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}
const code = (r: { json: () => Record<string, unknown> }) => (r.json()['errors'] as Array<{ code: string; message: string }>)[0]!.code;

test('probes and metrics are open; other paths are left to the OCI router', async () => {
  assert.equal((await call('GET', '/readyz')).status, 200);
  ready = false;
  const notReady = await call('GET', '/readyz');
  assert.equal(notReady.status, 503);
  assert.equal(notReady.json()['ready'], false);
  ready = true;
  const metrics = await call('GET', '/metrics');
  assert.equal(metrics.text, 'berth_x 1\n');
  assert.match(String(metrics.headers['content-type']), /^text\/plain/);
  assert.equal((await call('GET', '/v2/')).status, 418);
  assert.equal((await call('GET', '/apix')).status, 418);
});

test('the API needs the admin credentials and answers JSON errors', async () => {
  const denied = await call('GET', '/api/v1/stats');
  assert.equal(denied.status, 401);
  assert.equal(code(denied), 'UNAUTHORIZED');
  assert.match(String(denied.headers['www-authenticate']), /^Basic /);
  assert.equal((await call('GET', '/api/v1/stats', { headers: { authorization: 'Basic b3BzOm5vcGU=' } })).status, 401);
  const ok = await call('GET', '/api/v1/stats', { headers: auth });
  assert.deepEqual(ok.json(), { ok: 1 });
  assert.equal(ok.headers['cache-control'], 'no-store');
  const missing = await call('GET', '/api/v1/nothing', { headers: auth });
  assert.equal(missing.status, 404);
  assert.equal(code(missing), 'NOT_FOUND');
  const wrongMethod = await call('DELETE', '/api/v1/warm', { headers: auth });
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers['allow'], 'POST, GET, HEAD');
  assert.equal((await call('GET', '/api/v1/warm/none', { headers: auth })).status, 404);
  assert.equal((await call('GET', '/api/v1/warm/job-1', { headers: auth })).json()['state'], 'done');
  assert.deepEqual(JSON.parse((await call('GET', '/api/v1/queue', { headers: auth })).text), [{ digest: 'sha256:q' }]);
  const badJson = await call('POST', '/api/v1/pin', { headers: authJson, body: '{' });
  assert.equal(badJson.status, 400);
  assert.equal(code(badJson), 'INVALID_REQUEST');
  assert.equal((await call('POST', '/api/v1/pin', { headers: authJson, body: '{"image":"x/y:1"}' })).json()['ok'], true);
  const warm = await call('POST', '/api/v1/warm', {
    headers: authJson,
    body: '{"images":["harbor.xing.com/xing/app:v1"],"platforms":["linux/arm64"],"pin":true}',
  });
  assert.equal(warm.status, 202);
  assert.equal(warm.headers['location'], '/api/v1/warm/job-1');
  assert.deepEqual(started.at(-1), { images: ['harbor.xing.com/xing/app:v1'], platforms: [{ os: 'linux', architecture: 'arm64' }], pin: true, source: 'api' });
});

test('warm requests: defaults and every invalid field named', () => {
  assert.deepEqual(parseWarmBody({ images: ['a'] }), { images: ['a'], platforms: [{ os: 'linux', architecture: 'amd64' }], pin: false });
  assert.equal(parseWarmBody({ images: ['a'], allPlatforms: true }).platforms, 'all');
  const bad = (body: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => parseWarmBody(body),
      (e: unknown) => e instanceof ApiError && e.status === 400 && re.test(e.message),
    );
  bad({}, /"images" is required/);
  bad({ images: [] }, /"images" is required/);
  bad({ images: ['Bad'] }, /images\[0\]: invalid image reference/);
  bad({ images: ['a'], platforms: ['linux'] }, /platforms: invalid platform/);
  bad({ images: ['a'], platforms: ['linux/amd64'], allPlatforms: true }, /both set/);
  bad({ images: ['a'], pin: 'yes' }, /"pin" must be true or false/);
});
