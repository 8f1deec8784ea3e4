/** @module e2e/hostile-upstream.test — hostile clients against a pull-through berth and the real central registry: password floods, breaker abuse, the empty blob, log levels. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { makeTempDir, removeDir, run } from '../fixtures/proc.js';
import { call, digestOf, makeManifest, pushManifest, uploadBlob, type TestManifest } from '../fixtures/oci-http.js';
import { basic } from '../fixtures/oci-call.js';
import { httpPull } from '../fixtures/http-pull.js';
import { fromAddress } from '../fixtures/hostile.js';
import { pushModesConfig } from '../fixtures/push.js';

const EMPTY = digestOf(Buffer.alloc(0));
const bob = { username: 'bob', password: 'bob-edge-pw' };
const carol = { username: 'carol', password: 'carol-edge-pw' };

let work: string;
let registry: Registry;
let berth: Berth;
let app: TestManifest;
let other: TestManifest;

before(async () => {
  work = await makeTempDir('berth-e2e-hostile-up-');
  registry = await startRegistry();
  app = makeManifest(randomBytes(300), [randomBytes(1024 * 1024)]);
  other = makeManifest(randomBytes(300), [randomBytes(4096)]);
  const empty = makeManifest(randomBytes(200), [Buffer.alloc(0)]);
  for (const [repo, m] of [
    ['flood/app', app],
    ['flood/other', other],
    ['flood/empty', empty],
  ] as const) {
    assert.equal((await pushManifest(registry.url, repo, m, 'v1')).status, 201);
  }
  // alice's entry costs 2^12 rounds, as a careful operator sets it; the flood targets her.
  const lines = [
    (await run('htpasswd', ['-nbB', '-C', '12', 'alice', 'alice-edge-pw'])).stdout.trim(),
    (await run('htpasswd', ['-nbB', '-C', '5', bob.username, bob.password])).stdout.trim(),
    (await run('htpasswd', ['-nbB', '-C', '10', carol.username, carol.password])).stdout.trim(),
  ];
  const htpasswd = path.join(work, 'htpasswd');
  await writeFile(htpasswd, `${lines.join('\n')}\n`);
  berth = await startBerth({
    config: { version: 0.1, proxy: { remoteurl: registry.url }, auth: { htpasswd: { realm: 'edge', path: htpasswd } }, admin: { trustloopback: true } },
  });
});

after(async () => {
  await berth?.stop();
  await registry?.stop();
  if (work) await removeDir(work);
});

test('a flood of wrong passwords from one address: cached pulls and other users go on, the flooder backs off (429)', async () => {
  const bobAuth = basic(bob.username, bob.password);
  assert.equal((await httpPull(berth.url, 'flood/app', 'v1', bobAuth)).manifestDigest, app.digest, 'cached and verified before the flood');
  let stop = false;
  const statuses: number[] = [];
  let retryAfter = 0;
  // 16 connections in parallel, at most 400 requests: bounded, loopback only.
  const flood = Promise.all(
    Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; !stop && i < 25; i++) {
        const r = await fromAddress(`${berth.url}/v2/`, { headers: basic('alice', `guess-${w}-${i}`), localAddress: '127.0.0.2' });
        statuses.push(r.status);
        if (r.status === 429 && r.headers['retry-after']) retryAfter++;
      }
    }),
  );
  try {
    for (let i = 0; i < 5; i++) assert.equal((await httpPull(berth.url, 'flood/app', 'v1', bobAuth)).manifestDigest, app.digest);
    // carol's password is not verified yet: during the flood it is checked, not refused.
    const login = await fromAddress(`${berth.url}/v2/`, { headers: basic(carol.username, carol.password), localAddress: '127.0.0.3' });
    assert.equal(login.status, 200, login.body.toString());
    assert.equal((await httpPull(berth.url, 'flood/other', 'v1', basic(carol.username, carol.password))).manifestDigest, other.digest);
  } finally {
    stop = true;
    await flood;
  }
  const denied = statuses.filter((s) => s === 401).length;
  assert.ok(statuses.filter((s) => s === 429).length > 0, `the flooder is told to back off: ${JSON.stringify(statuses.slice(0, 40))}`);
  assert.ok(retryAfter > 0, '429 carries Retry-After');
  assert.ok(denied <= 8, `only a few guesses are checked at all (${denied} of ${statuses.length})`);
  assert.deepEqual(
    statuses.filter((s) => s !== 401 && s !== 429),
    [],
  );
});

test('requests that make the upstream answer 500 do not open the circuit breaker for everyone', async () => {
  const auth = basic(bob.username, bob.password);
  const layer = app.layers[0]!.digest;
  const statuses: number[] = [];
  // distribution answers 500 for a layer asked for as a manifest: one client's doing, not an outage.
  for (let i = 0; i < 6; i++) statuses.push((await call(berth.url, 'GET', `/v2/flood/app/manifests/${layer}`, { headers: auth })).status);
  const upstream500 = (await registry.requests()).filter((r) => r.uri.includes(`/manifests/${layer}`) && r.status >= 500).length;
  assert.ok(upstream500 >= 3, `the central registry answered 5xx (${upstream500}); statuses at berth ${statuses.join(',')}`);
  // Uncached content still comes through: the breaker stayed closed.
  const pulled = await httpPull(berth.url, 'flood/empty', 'v1', auth);
  assert.equal(pulled.blobs.length, 2);
  const upstreams = await call(berth.url, 'GET', '/api/v1/upstreams');
  assert.equal(upstreams.json<Array<{ state: string }>>()[0]?.state, 'up');
  assert.ok(!(await berth.logLines()).some((l) => String(l['msg']).startsWith('upstream unreachable')));
});

test('the zero-length blob through the proxy: GET, HEAD and Range work like any other blob', async () => {
  const auth = basic(bob.username, bob.password);
  for (let round = 0; round < 2; round++) {
    // First round fills from the upstream, second serves from disk.
    const get = await call(berth.url, 'GET', `/v2/flood/empty/blobs/${EMPTY}`, { headers: auth });
    assert.equal(get.status, 200, get.body.toString());
    assert.equal(get.body.length, 0);
    assert.equal(get.header('docker-content-digest'), EMPTY);
    const head = await call(berth.url, 'HEAD', `/v2/flood/empty/blobs/${EMPTY}`, { headers: auth });
    assert.equal(head.status, 200);
    assert.equal(head.header('content-length'), '0');
    const range = await call(berth.url, 'GET', `/v2/flood/empty/blobs/${EMPTY}`, { headers: { ...auth, range: 'bytes=0-' } });
    assert.equal(range.status, 416, 'no byte 0 in an empty blob, as for any blob asked beyond its end');
    assert.equal(range.header('content-range'), 'bytes */0');
  }
});

test('an unknown blob through the proxy is logged as client behaviour (info), not as an error', async () => {
  const auth = basic(bob.username, bob.password);
  const missing = digestOf(randomBytes(32));
  const r = await call(berth.url, 'GET', `/v2/flood/app/blobs/${missing}`, { headers: auth });
  assert.equal(r.status, 404);
  const lines = (await berth.logLines()).filter((l) => l['digest'] === missing);
  assert.ok(lines.length > 0);
  assert.deepEqual(
    lines.filter((l) => Number(l['level']) >= 50).map((l) => l['msg']),
    [],
  );
});

test('plain and pushed modes: the zero-length blob uploads, and GET, HEAD and Range of it work', async () => {
  const plain = await startBerth({ config: { version: 0.1 } });
  const pushing = await startBerth({ config: pushModesConfig(work, registry.url) });
  try {
    for (const [b, repo] of [
      [plain, 'push/empty'],
      [pushing, 'local/push/empty'],
      [pushing, 'through/push/empty'],
    ] as const) {
      assert.equal(await uploadBlob(b.url, repo, Buffer.alloc(0)), EMPTY);
      const get = await call(b.url, 'GET', `/v2/${repo}/blobs/${EMPTY}`);
      assert.equal(get.status, 200, `${repo}: ${get.body.toString()}`);
      assert.equal(get.body.length, 0);
      const head = await call(b.url, 'HEAD', `/v2/${repo}/blobs/${EMPTY}`);
      assert.equal(head.status, 200);
      assert.equal(head.header('content-length'), '0');
      const range = await call(b.url, 'GET', `/v2/${repo}/blobs/${EMPTY}`, { headers: { range: 'bytes=0-0' } });
      assert.equal(range.status, 416);
      assert.equal(range.header('content-range'), 'bytes */0');
    }
  } finally {
    await plain.stop();
    await pushing.stop();
  }
});
