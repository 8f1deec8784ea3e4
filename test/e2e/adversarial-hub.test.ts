/**
 * @module e2e/adversarial-hub.test — property-based hostile requests (fast-check) against a hub that does not lead (two hubs on one
 * redis-server): no open proxy (absolute-form URLs, `//host/path`, encoded slashes, Host and X-Forwarded-* tricks, CONNECT), a bad token
 * refused before anything is forwarded, no forwarding loop, no 5xx but a 503 with Retry-After. Replay a failure with the seed it prints.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import fc from 'fast-check';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { HUB_TOKEN, hubCall } from '../fixtures/fleet.js';
import { freePort, LOOPBACK, sleep, waitFor } from '../fixtures/proc.js';
import { startRedis, type RedisServer } from '../fixtures/redis.js';
import { adminErrorProblem, checkProperty, describe, rssMiB, send, type Probe, type Reply } from '../fixtures/adversarial.js';
import { ADDRESSES } from '../fixtures/arbitraries.js';
import { hubPath } from '../../src/fleet/hub.js';

const SEED = Number(process.env['ADVERSARIAL_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const PATH = process.env['ADVERSARIAL_PATH'];
const ANSWER_WITHIN_MS = 5_000;
const FORWARDED = 'x-berth-hub-forwarded';
/** docs/security.md "Request limits": resident memory of one serving process after a run. */
const RSS_BOUND_MIB = 384;

let redis: RedisServer;
let lead: Berth;
let follower: Berth;
/** Stands where a proxied request would land: it must never hear from a hub. */
let canary: http.Server;
let canaryHost: string;
let canaryHits = 0;

const startHub = async (redisAddr: string, port: number, advertise = `http://${LOOPBACK}:${port}`) =>
  startBerth({ config: { version: 0.1, hub: { token: HUB_TOKEN, advertise }, redis: { addr: redisAddr } }, port });
const leads = async (hub: Berth) => (await hub.logLines()).some((l) => l['msg'] === 'this hub leads; loading the hub state from Redis');
/** The requests a hub has logged (its access log). */
const requests = async (hub: Berth) => (await hub.logLines()).filter((l) => l['msg'] === 'request').length;
/** The count once the hub has logged what it was answering (an access log line follows its answer). */
async function settled(hub: Berth): Promise<number> {
  let last = await requests(hub);
  for (;;) {
    await sleep(100);
    const now = await requests(hub);
    if (now === last) return now;
    last = now;
  }
}

before(async () => {
  canary = http.createServer((req, res) => {
    canaryHits++;
    res.end('proxied');
  });
  canary.on('connect', (_req, socket: net.Socket) => {
    canaryHits++;
    socket.destroy();
  });
  canary.on('connection', () => canaryHits++);
  await new Promise<void>((resolve) => canary.listen(0, LOOPBACK, resolve));
  canaryHost = `${LOOPBACK}:${(canary.address() as net.AddressInfo).port}`;
  redis = await startRedis();
  lead = await startHub(redis.addr, await freePort());
  await waitFor(() => leads(lead), 10_000, { what: 'the first hub leads' });
  follower = await startHub(redis.addr, await freePort());
  await waitFor(async () => (await hubCall(follower.url, 'GET', '/api/v1/sites')).status === 200, 10_000, { what: 'the second hub forwards to the lead' });
  assert.equal(await leads(follower), false);
});

after(async () => {
  await follower?.stop();
  await lead?.stop();
  await redis?.stop();
  canary?.close();
  canary?.closeAllConnections();
});

const check = <T>(name: string, prop: fc.IAsyncProperty<[T]>, numRuns: number, timeLimitMs: number) =>
  checkProperty(name, { seed: SEED, path: PATH }, prop, numRuns, timeLimitMs);

/** What is wrong with a hub's answer: a hang, a cut, a 5xx other than 503 with Retry-After, an error that is no envelope. */
function hubProblem(p: Probe, r: Reply): string | null {
  if (r.status === -1) return null;
  if (r.failure === 'timeout') return 'no answer within the bound (a hang)';
  if (r.status === 0) return `connection ended without an answer: ${r.failure ?? ''}`;
  if (r.status >= 500 && !(r.status === 503 && Number(r.headers['retry-after']) >= 1)) return `${r.status} without Retry-After`;
  if (r.status >= 400 && p.method !== 'HEAD' && adminErrorProblem(r) !== null) return `${r.status}: ${adminErrorProblem(r)}`;
  if (String(r.body).includes('proxied')) return 'the canary answered through the hub (an open proxy)';
  return null;
}

/** Paths that try to leave the hub's own: absolute-form, protocol-relative, dot segments, encoded slashes, a selector naming a host. */
function hostilePath(c: string): fc.Arbitrary<string> {
  return fc.constantFrom(
    `http://${c}/api/v1/sites`,
    `http://${c}/healthy`,
    `http://${c}/api/v1/fleet/jobs`,
    `//${c}/api/v1/sites`,
    `//${c}/healthy`,
    `/.//${c}/api/v1/sites`,
    `/api/v1/fleet/%2F%2F${c}%2Fx`,
    `/api/v1/fleet//${c}/x`,
    `/api/v1/fleet/..%2F..%2F..%2Fx`,
    `/api/v1/fleet/../../../${c}`,
    `/sites/%2F%2F${c}/healthy`,
    `/sites/x//${c}/healthy`,
    `/sites/..%2F..%2F${c}/oapi/v1/jobs`,
    `/sites/%ff/healthy`,
    `/oapi/v1/jobs/%2e%2e%2f%2e%2e%2f${c}`,
    `/api/v1/sites?url=http://${c}/`,
    `/api/v1/sites@${c}`,
    '/api/v1/stats',
    '/v2/',
    '/healthy',
    '/api/v1/fleet/jobs',
    '/api/v1/sites',
    '/api/v1/sites/summary',
    '/preheats/x',
    '/api/v1/events',
    '/oapi/v1/jobs',
    '/api/v1/sites/site-1/bundle?images=x',
    `/api/v1/sites/..%2F..%2F${c}/bundle?images=x`,
    `/api/v1/sites/site-1/bundle?images=http://${c}/x:v1`,
    '/api/v1/sites/site-1/bundle?images=' + 'a,'.repeat(200),
    '/api/v1/sites/site-1/held',
    `/api/v1/sites/%2F%2F${c}/held`,
    '/api/v1/fleet/held/site-1',
    `/api/v1/fleet/held/..%2F${c}`,
  );
}

function hubProbe(c: string): fc.Arbitrary<Probe & { good: boolean }> {
  return fc
    .record({
      method: fc.constantFrom('GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'),
      path: hostilePath(c),
      auth: fc.constantFrom(
        `Bearer ${HUB_TOKEN}`,
        `Bearer ${HUB_TOKEN}`,
        '',
        'Bearer wrong',
        `Bearer ${HUB_TOKEN}x`,
        `Basic ${Buffer.from(`x:${HUB_TOKEN}-`).toString('base64')}`,
      ),
      extra: fc.record(
        {
          host: fc.constantFrom(c, `evil.example@${c}`, 'evil.example'),
          'x-forwarded-host': fc.constant(c),
          'x-forwarded-proto': fc.constantFrom('https', 'gopher'),
          'x-forwarded-for': fc.constantFrom('10.0.0.1', c),
          forwarded: fc.constant(`host=${c};proto=http`),
          [FORWARDED]: fc.constantFrom('1', ''),
        },
        { requiredKeys: [] },
      ),
      body: fc.constantFrom(undefined, '{}', '{"type":"preheat","args":{"type":"image","url":"http://' + c + '/v2/x/manifests/v1"}}', '{'),
      from: fc.constantFrom(...ADDRESSES),
    })
    .map(({ method, path, auth, extra, body, from }) => ({
      method,
      path,
      headers: { ...extra, 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
      body: body === undefined || method === 'GET' || method === 'HEAD' ? undefined : Buffer.from(body),
      from,
      good: auth === `Bearer ${HUB_TOKEN}`,
    }));
}

test('a hub that does not lead: every generated request is answered in time with an envelope, nothing ever reaches another host', async (t) => {
  t.diagnostic(`seed ${SEED}`);
  await check(
    'follower hub surface',
    fc.asyncProperty(fc.array(hubProbe(canaryHost), { minLength: 1, maxLength: 3 }), async (ps) => {
      for (const p of ps) {
        const before = p.good ? 0 : await settled(lead);
        const r = await send(follower.port, p, ANSWER_WITHIN_MS);
        const problem = hubProblem(p, r);
        if (problem) throw new Error(`${problem}\n  ${describe(p, r)}`);
        if (canaryHits > 0) throw new Error(`the canary was reached (${canaryHits})\n  ${describe(p, r)}`);
        if (!p.good) {
          const own = hubPath(new URL(p.path, 'http://hub.invalid').pathname) !== undefined;
          if (own && r.status < 400 && r.status !== -1) throw new Error(`a hub path answered without the token\n  ${describe(p, r)}`);
          if ((await settled(lead)) !== before) throw new Error(`the lead heard a request that carried no good token\n  ${describe(p, r)}`);
        }
      }
    }),
    100,
    40_000,
  );
  assert.equal(canaryHits, 0);
  const rss = await rssMiB(follower.service.pid);
  assert.ok(rss < RSS_BOUND_MIB, `the follower's RSS is ${rss.toFixed(0)} MiB after the run; bound ${RSS_BOUND_MIB} MiB`);
});

test('a JSON body over the 1 MiB limit through the follower: 413 every time, never a hang on the pooled connection to the lead', async () => {
  const body = Buffer.alloc(3 * 1024 * 1024, 0x20);
  for (let i = 0; i < 8; i++) {
    const p: Probe = { method: 'POST', path: '/oapi/v1/jobs', headers: { authorization: `Bearer ${HUB_TOKEN}`, 'content-type': 'application/json' }, body };
    const r = await send(follower.port, p, ANSWER_WITHIN_MS);
    assert.equal(r.status, 413, describe({ ...p, body: Buffer.alloc(0) }, r));
  }
});

test('CONNECT to a hub is refused with 405 and opens no tunnel', async () => {
  const answer = await new Promise<string>((resolve) => {
    const socket = net.connect(follower.port, LOOPBACK);
    let got = '';
    socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(got));
    socket.on('connect', () => socket.write(`CONNECT ${canaryHost} HTTP/1.1\r\nHost: ${canaryHost}\r\nAuthorization: Bearer ${HUB_TOKEN}\r\n\r\n`));
  });
  assert.match(answer, /^HTTP\/1\.1 405 /);
  assert.equal(canaryHits, 0);
});

test('no forwarding loop: a lead that advertises the follower itself gets a 503 with Retry-After back, after one hop', async () => {
  const redis2 = await startRedis();
  const followerPort = await freePort();
  // Misconfigured: the lead advertises the follower's address, so the follower forwards to itself.
  const wrongLead = await startHub(redis2.addr, await freePort(), `http://${LOOPBACK}:${followerPort}`);
  let loopFollower: Berth | undefined;
  try {
    await waitFor(() => leads(wrongLead), 10_000, { what: 'the misconfigured hub leads' });
    loopFollower = await startHub(redis2.addr, followerPort);
    const f = loopFollower;
    await waitFor(async () => (await f.logLines()).some((l) => l['msg'] === 'the hub lead changed'), 10_000, { what: 'the follower knows the lead' });
    const seen = await settled(f);
    const r = await hubCall(f.url, 'GET', '/api/v1/fleet/jobs');
    assert.equal(r.status, 503, JSON.stringify(r.json));
    assert.ok(Number(r.headers['retry-after']) >= 1, 'a 503 says when to retry');
    await waitFor(async () => (await requests(f)) >= seen + 2, 5_000, { what: 'both hops logged' });
    assert.equal(await settled(f), seen + 2, 'one hop, then the forwarded request is answered, not forwarded again');
  } finally {
    await loopFollower?.stop();
    await wrongLead.stop();
    await redis2.stop();
  }
});
