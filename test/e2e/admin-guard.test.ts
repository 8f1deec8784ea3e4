/**
 * @module e2e/admin-guard.test — a real berth against hostile admin-API callers and login guessers: cross-site POSTs,
 * DNS-rebound Host names, proxied loopback, admin.trustloopback, admin password guessing, malformed paths; registry
 * logins of unknown users at the costliest entry's bcrypt cost, and passwords over 72 bytes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { httpPull } from '../fixtures/http-pull.js';
import { makeTempDir, removeDir, run } from '../fixtures/proc.js';
import { startRegistry, type Registry } from '../fixtures/registry.js';

const admin = { username: 'ops', password: 'guard-the-cache' };
const first72 = 'seventy-two-bytes-'.repeat(4);
let registry: Registry;
let image: BuiltImage;
let work: string;
let htpasswd: string;
const started: Berth[] = [];

before(async () => {
  assert.equal(Buffer.byteLength(first72), 72);
  work = await makeTempDir('berth-e2e-admin-guard-');
  registry = await startRegistry({ auth: 'none' });
  image = await buildImage({ layers: 1, layerSize: 64 * 1024, tag: 'v1' });
  await pushImage(image, registry.url, 'xing/app:v1');
  htpasswd = path.join(work, 'htpasswd');
  const entry = async (user: string, password: string, cost: number) => (await run('htpasswd', ['-nbB', '-C', String(cost), user, password])).stdout.trim();
  await writeFile(htpasswd, `${await entry('dear', 'dear-pw', 12)}\n${await entry('dave', first72, 5)}\n`);
});

after(async () => {
  for (const b of started) await b.stop();
  await registry?.stop();
  await image?.remove();
  await removeDir(work);
});

async function berthWith(config: Record<string, unknown>): Promise<Berth> {
  const b = await startBerth({ config: { version: 0.1, ...config } });
  started.push(b);
  return b;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  code: string | undefined;
  body: string;
}

/** One raw request: Host, Origin and forwarding headers exactly as a hostile client sends them. */
function send(b: Berth, method: string, p: string, headers: Record<string, string> = {}, body?: string, localAddress = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: b.port, localAddress, method, path: p, headers: { host: b.host, ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(text) as { errors?: Array<{ code: string }> }).errors?.[0]?.code;
        } catch {
          code = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, code, body: text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });
const json = { 'content-type': 'application/json' };

test('without auth: and admin: — a cross-site POST, a DNS-rebound Host and a proxied loopback client change nothing', async () => {
  const b = await berthWith({ proxy: { remoteurl: registry.url } });
  await httpPull(b.url, 'xing/app', 'v1');
  const body = JSON.stringify({ image: 'xing/app:v1' });
  const listed = async () => JSON.parse((await send(b, 'GET', '/api/v1/images?q=xing/app')).body) as Array<{ pinned: boolean }>;

  // What a page on another site can send without a preflight: a text/plain "simple" request.
  const csrf = await send(b, 'POST', '/api/v1/evict', { 'content-type': 'text/plain;charset=UTF-8', origin: 'http://evil.example' }, body);
  assert.deepEqual([csrf.status, csrf.code], [403, 'FORBIDDEN'], csrf.body);
  const plain = await send(b, 'POST', '/api/v1/pin', { 'content-type': 'text/plain' }, body);
  assert.deepEqual([plain.status, plain.code], [415, 'UNSUPPORTED_MEDIA_TYPE'], plain.body);
  // A rebound name: the browser thinks evil.example is same-origin and sends JSON.
  const evilHost = `evil.example:${b.port}`;
  const rebound = await send(b, 'POST', '/api/v1/pin', { ...json, host: evilHost, origin: `http://${evilHost}` }, body);
  assert.deepEqual([rebound.status, rebound.code], [403, 'FORBIDDEN'], rebound.body);
  const proxied = await send(b, 'POST', '/api/v1/evict', { ...json, 'x-forwarded-for': '203.0.113.9' }, body);
  assert.deepEqual([proxied.status, proxied.code], [403, 'FORBIDDEN'], proxied.body);

  assert.equal((await listed()).length, 1, 'the image is still cached');
  assert.equal((await listed())[0]!.pinned, false, 'and not pinned');
  // The caller the rules are for still gets through: loopback, loopback Host, its own origin.
  const own = await send(b, 'POST', '/api/v1/pin', { ...json, origin: b.url }, body);
  assert.equal(own.status, 200, own.body);
  assert.equal((await listed())[0]!.pinned, true);
});

test('malformed percent-encoding under /api/ and /v2/ is 400 with an error envelope, never 500', async () => {
  const b = await berthWith({});
  for (const p of ['/api/v1/warm/%ff', '/api/v1/warm/%', '/api/v1/warm/%zz', '/api/v1/images/%ff']) {
    const r = await send(b, 'GET', p);
    assert.deepEqual([r.status, r.code], [400, 'INVALID_REQUEST'], `${p}: ${r.body}`);
  }
  for (const p of ['/v2/%ff/manifests/v1', '/v2/xing/app/blobs/%zz', '/v2/%/tags/list']) {
    const r = await send(b, 'GET', p);
    assert.equal(r.status, 400, `${p}: ${r.body}`);
    assert.ok(r.code, r.body);
  }
});

test('with auth: the admin API trusts loopback only when admin.trustloopback says so, and only for a loopback Host without proxy headers', async () => {
  const auth = { htpasswd: { realm: 'edge', path: htpasswd } };
  const closed = await berthWith({ auth });
  const refused = await send(closed, 'GET', '/api/v1/images');
  assert.deepEqual([refused.status, refused.code], [403, 'FORBIDDEN'], 'default with auth: no loopback trust');
  assert.match(refused.body, /admin\.trustloopback/);

  const trusting = await berthWith({ auth, admin: { trustloopback: true } });
  assert.equal((await send(trusting, 'GET', '/api/v1/images')).status, 200);
  assert.equal((await send(trusting, 'GET', '/api/v1/images', { host: `localhost:${trusting.port}` })).status, 200);
  const untrusted: Record<string, string>[] = [
    { host: 'evil.example' },
    { 'x-forwarded-for': '203.0.113.9' },
    { forwarded: 'for=203.0.113.9' },
    { 'x-real-ip': '203.0.113.9' },
  ];
  for (const headers of untrusted) {
    const r = await send(trusting, 'GET', '/api/v1/images', headers);
    assert.deepEqual([r.status, r.code], [403, 'FORBIDDEN'], JSON.stringify(headers));
  }
});

test('admin credentials with admin.trustloopback: false: loopback callers authenticate; guessing gets 429 with Retry-After', async () => {
  const b = await berthWith({ admin: { ...admin, trustloopback: false } });
  const anonymous = await send(b, 'GET', '/api/v1/stats');
  assert.deepEqual([anonymous.status, anonymous.code], [401, 'UNAUTHORIZED']);
  assert.equal((await send(b, 'GET', '/api/v1/stats', basic(admin.username, admin.password))).status, 200);
  const guesser = '127.0.0.9';
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await send(b, 'GET', '/api/v1/stats', basic(admin.username, `guess-${i}`), undefined, guesser)).status);
  assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
  assert.ok(
    statuses.slice(5).every((s) => s === 429),
    statuses.join(','),
  );
  const waiting = await send(b, 'GET', '/api/v1/stats', basic(admin.username, admin.password), undefined, guesser);
  assert.equal(waiting.status, 429, 'not even the right password is checked while the guesser waits');
  assert.match(String(waiting.headers['retry-after']), /^\d+$/);
  assert.equal((await send(b, 'GET', '/api/v1/stats', basic(admin.username, admin.password), undefined, '127.0.0.10')).status, 200, 'other clients go on');
});

test('registry logins: an unknown user is checked at the costliest entry’s cost; a password over 72 bytes is refused', async () => {
  const b = await berthWith({ auth: { htpasswd: { realm: 'edge', path: htpasswd } } });
  const loaded = (await b.logLines()).find((l) => l['msg'] === 'htpasswd loaded');
  assert.equal(loaded?.['unknownUserCost'], 12, 'unknown users go through bcrypt at cost 12, as the cost-12 user does');
  assert.equal((await send(b, 'GET', '/v2/', basic('nobody', 'dear-pw'), undefined, '127.0.0.11')).status, 401);
  assert.equal((await send(b, 'GET', '/v2/', basic('dear', 'wrong'), undefined, '127.0.0.11')).status, 401);
  assert.equal((await send(b, 'GET', '/v2/', basic('dear', 'dear-pw'), undefined, '127.0.0.12')).status, 200);
  const long = await send(b, 'GET', '/v2/', basic('dave', `${first72}and-another-tail`), undefined, '127.0.0.13');
  assert.equal(long.status, 401, 'the first 72 bytes are right; bcrypt alone would accept it');
  assert.equal((await send(b, 'GET', '/v2/', basic('dave', first72), undefined, '127.0.0.13')).status, 200);
});
