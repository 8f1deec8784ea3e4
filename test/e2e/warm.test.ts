/** @module e2e/warm.test — `berth warm` of a multi-platform index, then containerd, /metrics against the bytes moved, /readyz with the WAN down. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { request } from 'undici';
import { startRegistry, type Registry, type RegistryRequest } from '../fixtures/registry.js';
import { buildIndex, pushImage, type BuiltIndex } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { startContainerd, writeHostsToml } from '../fixtures/clients.js';
import { makeTempDir, removeDir } from '../fixtures/proc.js';
import { api, berthWarm, sample, scrape } from '../fixtures/admin.js';

const users = { admin: 'Harbor12345' };
const creds = { username: 'admin', password: users.admin };
const MiB = 1 << 20;
const PLATFORMS = ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'];
let registry: Registry;
let berth: Berth;
let index: BuiltIndex;
let work: string;

before(async () => {
  work = await makeTempDir('berth-e2e-warm-');
  registry = await startRegistry({ auth: 'token', users });
  index = await buildIndex({ layers: 2, layerSize: 2 * MiB, tag: 'v1', platforms: PLATFORMS });
  await pushImage(index, registry.url, 'xing/multi:v1', creds);
  berth = await startBerth({ proxy: { remoteurl: registry.url, ...creds } });
});

after(async () => {
  await berth?.stop();
  await registry?.stop();
  await index?.remove();
  await removeDir(work);
});

/** buildIndex keeps the order of its platforms. */
const platformImage = (p: string) => index.images[PLATFORMS.indexOf(p)]!;
/** Successful content GETs the central registry answered (what crossed the WAN). */
const contentGets = async (): Promise<RegistryRequest[]> =>
  (await registry.requests()).filter((r) => r.method === 'GET' && (r.status === 200 || r.status === 206) && /\/(blobs|manifests)\//.test(r.uri));
const blobDigests = (rs: RegistryRequest[]) => rs.filter((r) => r.uri.includes('/blobs/')).map((r) => r.uri.split('/blobs/')[1]!);
const bytesOf = (rs: RegistryRequest[]) => rs.reduce((n, r) => n + r.written, 0);

test('berth warm fetches exactly the blobs of the platforms asked for, and reports progress and a summary', async () => {
  const amd64 = platformImage('linux/amd64');
  const arm64 = platformImage('linux/arm64/v8');
  const r = await berthWarm(['--server', berth.url, '--platform', 'linux/arm64,linux/amd64', 'harbor.xing.com/xing/multi:v1']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /harbor\.xing\.com\/xing\/multi:v1: fetching/);
  assert.match(r.stdout, /1 image\(s\): 1 fetched \([\d.]+ MiB\), 0 already cached, 0 failed/);
  const gets = await contentGets();
  const expected = [...amd64.blobs, ...arm64.blobs].map((b) => b.digest).sort();
  assert.deepEqual(blobDigests(gets).sort(), expected, 'each blob of linux/amd64 and linux/arm64 once, nothing of linux/arm/v7');

  const metrics = await scrape(berth.url);
  assert.equal(sample(metrics, 'berth_upstream_bytes_total', { upstream: 'default' }), bytesOf(gets), 'upstream bytes = what the registry sent');
  assert.ok((sample(metrics, 'berth_upstream_token_refreshes_total', { upstream: 'default' }) ?? 0) >= 1);

  const again = await berthWarm(['--server', berth.url, '--platform', 'linux/arm64,linux/amd64', 'harbor.xing.com/xing/multi:v1']);
  assert.equal(again.code, 0);
  assert.match(again.stdout, /0 fetched \(0 B\), 1 already cached, 0 failed/);
  assert.equal((await contentGets()).length, gets.length, 'a second warm moves nothing');

  const jobs = (await api(berth.url, 'GET', '/api/v1/warm')).json as Array<{
    state: string;
    images: Array<{ state: string; blobsTotal: number; bytesTotal: number; bytesDone: number; platforms: string[] }>;
  }>;
  assert.equal(jobs.length, 2);
  const first = jobs[1]!.images[0]!;
  assert.equal(first.state, 'done');
  assert.equal(first.blobsTotal, expected.length);
  assert.equal(first.bytesDone, first.bytesTotal);
  assert.deepEqual(first.platforms.sort(), ['linux/amd64', 'linux/arm64/v8']);

  const images = (await api(berth.url, 'GET', '/api/v1/images?q=multi')).json as Array<Record<string, unknown>>;
  const v1 = images.find((i) => i['tag'] === 'v1')!;
  assert.equal(v1['digest'], index.manifestDigest);
  assert.deepEqual((v1['platforms'] as string[]).sort(), ['linux/amd64', 'linux/arm64/v8']);
  assert.equal(v1['size'], index.manifestBytes.length + amd64.totalSize + arm64.totalSize);
  assert.equal(v1['pinned'], false);
});

test('a containerd node pulling the warmed image costs the central registry no blob bytes', async () => {
  const hostsDir = path.join(work, 'hosts');
  await writeHostsToml(hostsDir, 'harbor.xing.com', berth.url);
  const node = await startContainerd();
  try {
    const before = await contentGets();
    const m0 = await scrape(berth.url);
    await node.pull('harbor.xing.com/xing/multi:v1', { hostsDir, plainHttp: true, platform: 'linux/arm64' });
    const images = await node.images();
    assert.ok(
      images.some((i) => i.ref === 'harbor.xing.com/xing/multi:v1' && i.digest === index.manifestDigest),
      JSON.stringify(images),
    );
    const after = await contentGets();
    assert.deepEqual(blobDigests(after), blobDigests(before), 'no blob crossed the WAN');
    const m1 = await scrape(berth.url);
    assert.equal(sample(m1, 'berth_upstream_bytes_total', { upstream: 'default' }), bytesOf(after));
    const served = sample(m1, 'berth_served_bytes_total', { source: 'cache' })! - sample(m0, 'berth_served_bytes_total', { source: 'cache' })!;
    const saved = sample(m1, 'berth_wan_bytes_saved_total')! - sample(m0, 'berth_wan_bytes_saved_total')!;
    assert.ok(served >= platformImage('linux/arm64/v8').blobs.reduce((n, b) => n + b.size, 0), `served ${served}`);
    assert.equal(saved, served, 'everything containerd got was served from the cache');
  } finally {
    await node.stop();
  }
});

test('/metrics counts exactly the bytes of a cold and a warm blob fetch', async () => {
  const blob = platformImage('linux/arm/v7').layers[0]!;
  const fetch = async () => {
    const res = await request(`${berth.url}/v2/xing/multi/blobs/${blob.digest}`);
    let n = 0;
    for await (const c of res.body) n += (c as Buffer).length;
    assert.equal(res.statusCode, 200);
    return n;
  };
  const regBefore = bytesOf(await contentGets());
  const m0 = await scrape(berth.url);
  assert.equal(await fetch(), blob.size);
  const m1 = await scrape(berth.url);
  const regDelta = bytesOf(await contentGets()) - regBefore;
  assert.equal(regDelta, blob.size);
  const delta = (a: string, b: string, name: string, labels?: Record<string, string>) => sample(b, name, labels)! - sample(a, name, labels)!;
  assert.equal(delta(m0, m1, 'berth_upstream_bytes_total', { upstream: 'default' }), blob.size);
  assert.equal(delta(m0, m1, 'berth_served_bytes_total', { source: 'upstream' }), blob.size);
  assert.equal(delta(m0, m1, 'berth_wan_bytes_saved_total'), 0);
  assert.equal(await fetch(), blob.size);
  const m2 = await scrape(berth.url);
  assert.equal(delta(m1, m2, 'berth_served_bytes_total', { source: 'cache' }), blob.size);
  assert.equal(delta(m1, m2, 'berth_wan_bytes_saved_total'), blob.size);
  assert.equal(delta(m1, m2, 'berth_upstream_bytes_total', { upstream: 'default' }), 0);
  const stats = (await api(berth.url, 'GET', '/api/v1/stats')).json as {
    bytesServed: { fromCache: number; fromUpstream: number };
    upstreamBytes: Record<string, number>;
    store: { bytes: number };
  };
  assert.equal(stats.upstreamBytes['default'], sample(m2, 'berth_upstream_bytes_total', { upstream: 'default' }));
  assert.equal(stats.bytesServed.fromCache, sample(m2, 'berth_served_bytes_total', { source: 'cache' }));
  assert.equal(stats.store.bytes, sample(m2, 'berth_store_bytes'));
});

test('berth warm exits 1 and names the failure when an image cannot be fetched', async () => {
  const r = await berthWarm(['--server', berth.url, 'xing/multi:v1', 'xing/missing:v1']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /2 image\(s\): 0 fetched \(0 B\), 1 already cached, 1 failed/);
  assert.match(r.stdout, /failed: xing\/missing:v1: manifest v1 is not known/);
  const bad = await berthWarm(['--server', berth.url, 'Not/Valid']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid image reference/);
});

test('/readyz stays 200 with the upstream down and reports it; cached content is still served', async () => {
  const upBefore = (await api(berth.url, 'GET', '/api/v1/upstreams')).json as Array<Record<string, unknown>>;
  const { checks, ...breaker } = upBefore[0]!;
  assert.deepEqual(breaker, { name: 'default', remoteurl: registry.url, state: 'up', since: null, lastError: null, consecutiveFailures: 0 });
  assert.ok(Array.isArray(checks) && checks.every((c: { ok: boolean }) => c.ok), 'the start-up checks passed');
  await registry.down();
  try {
    // The first refused connection opens the circuit breaker; the other two hear 503 at once.
    for (let i = 0; i < 3; i++) {
      const res = await request(`${berth.url}/v2/xing/absent/manifests/v${i}`);
      await res.body.dump();
      assert.equal(res.statusCode, 503);
    }
    const ready = await api(berth.url, 'GET', '/readyz');
    assert.equal(ready.status, 200);
    const {
      upstreams: [first],
      store: { disk, ...store },
      ...rest
    } = ready.json as { upstreams: Array<{ name: string; state: string; problems: string[] }>; store: { disk: { ok: boolean } } };
    assert.deepEqual({ ...rest, store }, { ready: true, store: { writable: true, metadata: true } });
    assert.equal(disk.ok, true, 'the disk has room');
    assert.deepEqual([first!.name, first!.state, first!.problems], ['default', 'down', []], 'down now; the start-up checks found no problem');
    const ups = (await api(berth.url, 'GET', '/api/v1/upstreams')).json as Array<Record<string, unknown>>;
    assert.equal(ups[0]!['state'], 'down');
    assert.equal(ups[0]!['remoteurl'], registry.url);
    assert.ok(Number(ups[0]!['consecutiveFailures']) >= 1);
    assert.match(String(ups[0]!['lastError']), /ECONNREFUSED/);
    assert.equal(sample(await scrape(berth.url), 'berth_upstream_up', { upstream: 'default' }), 0);
    const arm64 = platformImage('linux/arm64/v8');
    const res = await request(`${berth.url}/v2/xing/multi/blobs/${arm64.layers[0]!.digest}`);
    await res.body.dump();
    assert.equal(res.statusCode, 200);
  } finally {
    await registry.up();
  }
});
