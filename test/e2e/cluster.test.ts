/** @module e2e/cluster.test — three berth replicas on one real redis-server in front of the real registry: one WAN copy per site, peers, failures. */
/** @serial a throttled link's bytes are counted while a replica is killed; needs the machine to itself. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import type { Berth } from '../fixtures/berth.js';
import { startRedis, type RedisServer } from '../fixtures/redis.js';
import { startSite, stopSite } from '../fixtures/site.js';
import { startBalancer } from '../fixtures/balancer.js';
import { startRelay, type Relay } from '../fixtures/relay.js';
import { LOOPBACK, makeTempDir, removeDir, sleep } from '../fixtures/proc.js';
import { skopeoPull } from '../fixtures/clients.js';
import { httpPull } from '../fixtures/http-pull.js';

const SECRET = 'site-secret-for-the-cluster-test';
let registry: Registry;
let redis: RedisServer;
const images: BuiltImage[] = [];
const report: string[] = [];

before(async () => {
  registry = await startRegistry({ auth: 'none' });
  redis = await startRedis();
});

after(async () => {
  await registry?.stop();
  await redis?.stop();
  await Promise.all(images.map((i) => i.remove()));
  if (report.length) console.log(`cluster measurements:\n${report.join('\n')}`);
});

async function image(repoTag: string, layers = 3, layerSize = 2 * 1024 * 1024): Promise<BuiltImage> {
  const img = await buildImage({ layers, layerSize, tag: 'v1' });
  images.push(img);
  await pushImage(img, registry.url, repoTag);
  return img;
}

/** Worker processes per replica: set, not `auto`, so the tests know how many Redis clients to expect. */
const WORKERS = 2;

/** Three replicas of one site; `remoteurl` may be a relay. */
function site(remoteurl = registry.url, n = 3): Promise<Berth[]> {
  return startSite({
    redisAddr: redis.addr,
    secret: SECRET,
    n,
    config: { version: 0.1, log: { level: 'info' }, http: { workers: WORKERS }, proxy: { remoteurl, tagttl: '10m', pushmode: 'local' } },
  });
}

/** Lets every replica see the others (heartbeats). */
const settle = () => sleep(2_500);

async function sent(fn: () => Promise<unknown>): Promise<number> {
  const before = await registry.bytesSent();
  await fn();
  // distribution logs a request after its response: give the log a moment.
  await sleep(300);
  return (await registry.bytesSent()) - before;
}

/**
 * Waits until `n` replicas heartbeat into the (new, empty) Redis again and every worker process
 * of each has reconnected (its named connection is back): a worker still reconnecting works alone.
 */
async function rejoined(n: number): Promise<void> {
  const { Redis } = await import('ioredis');
  const r = new Redis({ host: LOOPBACK, port: redis.port, lazyConnect: true });
  try {
    await r.connect();
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(200)) {
      const keys = await r.keys('berth:*:members');
      const counts = await Promise.all(keys.map((k) => r.zcard(k)));
      const clients = String(await r.call('CLIENT', 'LIST'))
        .split('\n')
        .filter((line) => / name=berth:/.test(line)).length;
      if (counts.some((c) => c >= n) && clients >= n * WORKERS) return;
    }
    throw new Error(`${n} replicas did not rejoin Redis within 30 s`);
  } finally {
    r.disconnect();
  }
}

const stopAll = stopSite;

test('30 nodes over 3 replicas, cold: about one registry copy, all verified; then each replica serves at 0 registry bytes', async () => {
  const img = await image('site/app:v1');
  const bs = await site();
  try {
    await settle();
    const cold = await sent(() =>
      Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const r = await httpPull(bs[i % 3]!.url, 'site/app', 'v1');
          assert.equal(r.manifestDigest, img.manifestDigest);
        }),
      ),
    );
    const ratio = cold / img.totalSize;
    report.push(`cold, 30 nodes over 3 replicas: registry bytes ${cold} / image ${img.totalSize} = ${ratio.toFixed(3)}x`);
    assert.ok(ratio <= 1.05, `registry sent ${ratio.toFixed(3)}x the image`);
    const warm = await sent(() => Promise.all(bs.map((b) => httpPull(b.url, 'site/app', 'v1'))));
    report.push(`warm, one pull on each replica: registry bytes ${warm}`);
    assert.equal(warm, 0);
  } finally {
    await stopAll(bs);
  }
});

test('behind a round-robin load balancer (nginx) the requests of each cold pull land on different replicas: the registry sends the image once, every pull verified', async () => {
  const img = await image('site/balanced:v1');
  const bs = await site();
  const lb = await startBalancer(bs.map((b) => b.url));
  const out = await makeTempDir('berth-cluster-lb-');
  try {
    await settle();
    const cold = await sent(() =>
      Promise.all(
        Array.from({ length: 4 }, async (_, i) => {
          // skopeo re-hashes every blob it fetches.
          const pulled = await skopeoPull(`${lb.host}/site/balanced:v1`, `${out}/node-${i}`);
          assert.equal(pulled.manifestDigest, img.manifestDigest);
        }),
      ),
    );
    const blobGets = (await lb.requests()).filter((r) => r.method === 'GET' && r.path.startsWith('/v2/site/balanced/blobs/'));
    assert.ok(new Set(blobGets.map((r) => r.upstream)).size === 3, `blob requests reached every replica: ${JSON.stringify(blobGets)}`);
    const ratio = cold / img.totalSize;
    report.push(`cold, 4 skopeo pulls through nginx round-robin over 3 replicas: registry bytes / image = ${ratio.toFixed(3)}x`);
    assert.ok(ratio <= 1.05, `registry sent ${ratio.toFixed(3)}x the image`);
  } finally {
    await removeDir(out);
    await lb.stop();
    await stopAll(bs);
  }
});

test('the peer endpoint refuses requests without the cluster secret', async () => {
  const img = await image('site/secret:v1', 1, 64 * 1024);
  const bs = await site(registry.url, 1);
  try {
    await httpPull(bs[0]!.url, 'site/secret', 'v1');
    const digest = img.layers[0]!.digest;
    const path = `/_berth/peer/blobs/${digest}?upstream=default&repository=site/secret&mode=held`;
    for (const headers of [{}, { authorization: 'Berth-Peer wrong-secret-of-enough-length' }, { authorization: `Bearer ${SECRET}` }]) {
      const res = await request(`${bs[0]!.url}${path}`, { headers });
      await res.body.dump();
      assert.equal(res.statusCode, 401);
    }
    const ok = await request(`${bs[0]!.url}${path}`, { headers: { authorization: `Berth-Peer ${SECRET}` } });
    assert.equal(ok.statusCode, 200);
    assert.equal(Buffer.from(await ok.body.arrayBuffer()).length, img.layers[0]!.size);
    const other = await request(`${bs[0]!.url}${path.replace('repository=site/secret', 'repository=site/nothere')}`, {
      headers: { authorization: `Berth-Peer ${SECRET}` },
    });
    await other.body.dump();
    assert.equal(other.statusCode, 404, 'never served to a repository that does not reference it');
  } finally {
    await stopAll(bs);
  }
});

test('a pull from B of what A holds costs the registry 0; with A SIGKILLed, a pull from C costs 0 when B holds it', async () => {
  const img = await image('site/held:v1');
  const [a, b, c] = await site();
  try {
    await settle();
    await httpPull(a!.url, 'site/held', 'v1');
    // A real client, in its own process.
    const out = await makeTempDir('berth-cluster-skopeo-');
    const fromB = await sent(async () => {
      const pulled = await skopeoPull(`${b!.host}/site/held:v1`, out);
      assert.equal(pulled.manifestDigest, img.manifestDigest);
      assert.equal(pulled.blobs.length, img.blobs.length);
    });
    await removeDir(out);
    report.push(`pull from B of what A holds: registry bytes ${fromB}`);
    assert.equal(fromB, 0);
    await a!.kill('SIGKILL');
    const started = Date.now();
    const fromC = await sent(async () => {
      const r = await httpPull(c!.url, 'site/held', 'v1');
      assert.equal(r.manifestDigest, img.manifestDigest);
    });
    report.push(`A SIGKILLed, pull from C while B holds it: registry bytes ${fromC}, ${Date.now() - started} ms`);
    assert.equal(fromC, 0);
  } finally {
    await stopAll([a!, b!, c!]);
  }
});

/** Pulls, each retried on the next replica when its own fails (a node whose cache died moves on). */
async function pullAll(bs: Berth[], repository: string, img: BuiltImage, nodes = 30, alive: (i: number) => boolean = () => true) {
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: nodes }, async (_, i) => {
      for (let k = 0; k < bs.length; k++) {
        const b = bs[(i + k) % bs.length]!;
        try {
          const r = await httpPull(b.url, repository, 'v1');
          assert.equal(r.manifestDigest, img.manifestDigest);
          return;
        } catch (err) {
          if (alive((i + k) % bs.length)) failures.push(`node ${i} on replica ${(i + k) % bs.length}: ${(err as Error).message}`);
        }
      }
      failures.push(`node ${i}: no replica served it`);
    }),
  );
  return failures;
}

test('Redis SIGKILLed: every replica works alone (<= one copy each, no error); once Redis returns a new image costs one copy again', async () => {
  const bs = await site();
  try {
    await settle();
    const img = await image('site/outage:v1');
    await redis.kill();
    const alone = await sent(async () => assert.deepEqual(await pullAll(bs, 'site/outage', img), []));
    const ratio = alone / img.totalSize;
    report.push(`Redis down, 30 nodes over 3 replicas: registry bytes ${alone} / image ${img.totalSize} = ${ratio.toFixed(3)}x`);
    assert.ok(ratio <= 3.05, `${ratio.toFixed(3)}x`);
    await redis.up();
    await rejoined(bs.length);
    const next = await image('site/after:v1');
    const back = await sent(async () => assert.deepEqual(await pullAll(bs, 'site/after', next), []));
    const ratio2 = back / next.totalSize;
    report.push(`Redis back, new image, 30 nodes: registry bytes ${back} / image ${next.totalSize} = ${ratio2.toFixed(3)}x`);
    assert.ok(ratio2 <= 1.05, `${ratio2.toFixed(3)}x`);
  } finally {
    await stopAll(bs);
  }
});

test('the filler SIGKILLed mid-fill behind a throttled link: survivors resume from their bytes, every node verified, link <= 1.25x', async () => {
  const img = await image('site/killed:v1', 1, 8 * 1024 * 1024);
  const relay: Relay = await startRelay({ targetPort: registry.port, rateBytesPerSec: 3 * 1024 * 1024 });
  const bs = await site(relay.url);
  const { Redis } = await import('ioredis');
  const r = new Redis({ host: LOOPBACK, port: redis.port });
  try {
    await settle();
    const layer = img.layers[0]!.digest;
    let dead = -1;
    const pulls = pullAll(bs, 'site/killed', img, 30, (i) => i !== dead);
    // Once about a third of the layer crossed the link, kill whoever fills it.
    while (relay.bytesToClient() < img.totalSize / 3) await sleep(50);
    const keys = await r.keys(`berth:*:fill:${layer}`);
    const owner = keys.length ? (await r.get(keys[0]!))?.split(' ')[1] : undefined;
    dead = bs.findIndex((b) => b.url === owner);
    assert.ok(dead >= 0, `a replica holds the fill lease (${String(owner)})`);
    await bs[dead]!.kill('SIGKILL');
    const failures = await pulls;
    assert.deepEqual(failures, [], 'no node on a survivor saw an error');
    const ratio = relay.bytesToClient() / img.totalSize;
    report.push(
      `filler SIGKILLed mid-fill behind a 3 MiB/s link, 30 nodes: link bytes ${relay.bytesToClient()} / image ${img.totalSize} = ${ratio.toFixed(3)}x`,
    );
    assert.ok(ratio <= 1.25, `${ratio.toFixed(3)}x`);
  } finally {
    r.disconnect();
    await stopAll(bs);
    await relay.stop();
  }
});

test('an upload spread over the replicas (POST on A, PATCH on B and C, PUT on C) completes, and B then serves the blob', async () => {
  const [a, b, c] = await site();
  try {
    await settle();
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const post = await request(`${a!.url}/v2/site/pushed/blobs/uploads/`, { method: 'POST' });
    await post.body.dump();
    assert.equal(post.statusCode, 202);
    let location = String(post.headers['location']);
    const half = 1_500_000;
    for (const [replica, from, to] of [
      [b!, 0, half],
      [c!, half, data.length],
    ] as const) {
      const patch = await request(`${replica.url}${location}`, {
        method: 'PATCH',
        body: data.subarray(from, to),
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${to - 1}` },
      });
      await patch.body.dump();
      assert.equal(patch.statusCode, 202, `PATCH on another replica (${replica.url})`);
      location = String(patch.headers['location']);
    }
    const sep = location.includes('?') ? '&' : '?';
    const put = await request(`${c!.url}${location}${sep}digest=${encodeURIComponent(digest)}`, { method: 'PUT' });
    await put.body.dump();
    assert.equal(put.statusCode, 201);
    assert.equal(put.headers['docker-content-digest'], digest);
    const got = await request(`${b!.url}/v2/site/pushed/blobs/${digest}`);
    const body = Buffer.from(await got.body.arrayBuffer());
    assert.equal(got.statusCode, 200);
    assert.ok(body.equals(data), 'B serves the pushed blob (from A)');
  } finally {
    await stopAll([a!, b!, c!]);
  }
});
