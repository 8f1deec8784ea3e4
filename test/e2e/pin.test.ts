/** @module e2e/pin.test — the warm: schedule pins images that then survive eviction; pin, unpin and evict through the admin API behind its credentials. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { httpPull } from '../fixtures/http-pull.js';
import { makeTempDir, removeDir, waitFor } from '../fixtures/proc.js';
import { api, berthWarm, sampleSum, scrape } from '../fixtures/admin.js';

const MiB = 1 << 20;
const admin = { username: 'ops', password: 'warm-and-pin' };
let registry: Registry;
let berth: Berth;
let work: string;
const images: Record<'a' | 'b' | 'c', BuiltImage> = {} as Record<'a' | 'b' | 'c', BuiltImage>;

before(async () => {
  work = await makeTempDir('berth-e2e-pin-');
  registry = await startRegistry({ auth: 'none' });
  for (const name of ['a', 'b', 'c'] as const) {
    images[name] = await buildImage({ layers: 2, layerSize: 3 * MiB, tag: 'v1' });
    await pushImage(images[name], registry.url, `xing/${name}:v1`);
  }
  const passwordFile = path.join(work, 'admin.pass');
  await writeFile(passwordFile, `${admin.password}\n`);
  berth = await startBerth({
    config: {
      version: 0.1,
      storage: { maxsize: '10MiB', lowwatermark: 0.5 },
      proxy: { remoteurl: registry.url },
      admin: { username: admin.username, passwordfile: passwordFile },
      warm: { interval: '1h', images: ['xing/a:v1'], platforms: ['linux/amd64'] },
    },
  });
});

after(async () => {
  await berth?.stop();
  await registry?.stop();
  for (const img of Object.values(images)) await img.remove();
  await removeDir(work);
});

const stored = async (digest: string) =>
  access(path.join(berth.root, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7))).then(
    () => true,
    () => false,
  );
const blobBytesSent = async () => (await registry.requests()).filter((r) => r.method === 'GET' && r.uri.includes('/blobs/')).reduce((n, r) => n + r.written, 0);
type Listed = Array<{ repository: string; tag: string; pinned: boolean; size: number; platforms: string[] }>;

test('the admin API wants its own credentials; probes and metrics stay open', async () => {
  const denied = await api(berth.url, 'GET', '/api/v1/stats');
  assert.equal(denied.status, 401);
  assert.match(String(denied.headers['www-authenticate']), /^Basic realm="berth admin"/);
  assert.equal((denied.json as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNAUTHORIZED');
  assert.equal((await api(berth.url, 'GET', '/api/v1/stats', undefined, { ...admin, password: 'wrong' })).status, 401);
  assert.equal((await api(berth.url, 'GET', '/api/v1/stats', undefined, admin)).status, 200);
  assert.equal((await api(berth.url, 'GET', '/readyz')).status, 200);
  assert.match(await scrape(berth.url), /berth_store_limit_bytes 10485760/);
  const cli = await berthWarm(['--server', berth.url, 'xing/a:v1']);
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /UNAUTHORIZED: the admin API needs credentials/);
});

test('the warm: list is fetched and pinned at start-up', async () => {
  await waitFor(
    async () => {
      const jobs = (await api(berth.url, 'GET', '/api/v1/warm', undefined, admin)).json as Array<{ source: string; state: string }>;
      return jobs.some((j) => j.source === 'schedule' && j.state !== 'running');
    },
    60_000,
    { what: 'the scheduled warm job' },
  );
  const jobs = (await api(berth.url, 'GET', '/api/v1/warm', undefined, admin)).json as Array<{ source: string; state: string }>;
  assert.equal(jobs[0]!.state, 'done');
  const listed = (await api(berth.url, 'GET', '/api/v1/images?q=xing/a', undefined, admin)).json as Listed;
  assert.equal(listed.length, 1);
  assert.equal(listed[0]!.pinned, true);
  assert.equal(listed[0]!.size, images.a.totalSize);
  assert.deepEqual(listed[0]!.platforms, ['linux/amd64']);
  for (const b of images.a.blobs) assert.ok(await stored(b.digest));
});

test('pinned content survives eviction under a small storage.maxsize', async () => {
  await httpPull(berth.url, 'xing/b', 'v1');
  await httpPull(berth.url, 'xing/c', 'v1');
  await waitFor(async () => sampleSum(await scrape(berth.url), 'berth_evictions_total', { reason: 'size' }) > 0, 30_000, { what: 'an eviction pass' });
  for (const b of images.a.blobs) assert.ok(await stored(b.digest), `pinned blob ${b.digest} must stay`);
  const evictedB = (await Promise.all(images.b.layers.map((l) => stored(l.digest)))).filter((x) => !x).length;
  assert.ok(evictedB > 0, 'the least recently used unpinned image went');
  const sent = await blobBytesSent();
  await httpPull(berth.url, 'xing/a', 'v1');
  assert.equal(await blobBytesSent(), sent, 'the pinned image is served from disk');
  const warm = await berthWarm(['--server', berth.url, '--username', admin.username, 'xing/a:v1'], { BERTH_ADMIN_PASSWORD: admin.password });
  assert.equal(warm.code, 0, warm.stderr);
  assert.match(warm.stdout, /1 already cached/);
});

test('pin, unpin and evict through the admin API', async () => {
  const conflict = await api(berth.url, 'POST', '/api/v1/evict', { image: 'xing/a:v1' }, admin);
  assert.equal(conflict.status, 409);
  assert.match(JSON.stringify(conflict.json), /pinned; unpin it first/);
  const unpinned = await api(berth.url, 'POST', '/api/v1/unpin', { image: 'xing/a:v1' }, admin);
  assert.equal(unpinned.status, 200);
  assert.equal((unpinned.json as { ok: boolean; digest: string }).digest, images.a.manifestDigest);
  const m0 = await scrape(berth.url);
  const evicted = await api(berth.url, 'POST', '/api/v1/evict', { image: 'xing/a:v1' }, admin);
  assert.equal(evicted.status, 200, JSON.stringify(evicted.json));
  const body = evicted.json as { ok: boolean; evicted: number; freedBytes: number };
  assert.equal(body.ok, true);
  assert.equal(body.freedBytes, images.a.totalSize);
  for (const b of images.a.blobs) assert.ok(!(await stored(b.digest)));
  assert.equal(((await api(berth.url, 'GET', '/api/v1/images?q=xing/a', undefined, admin)).json as Listed).length, 0);
  const m1 = await scrape(berth.url);
  assert.equal(
    sampleSum(m1, 'berth_evicted_bytes_total', { reason: 'admin' }) - sampleSum(m0, 'berth_evicted_bytes_total', { reason: 'admin' }),
    images.a.totalSize,
  );
  await httpPull(berth.url, 'xing/c', 'v1');
  const pinned = await api(berth.url, 'POST', '/api/v1/pin', { image: 'xing/c:v1' }, admin);
  assert.equal(pinned.status, 200);
  assert.equal(((await api(berth.url, 'GET', '/api/v1/images?q=xing/c', undefined, admin)).json as Listed)[0]!.pinned, true);
  const unknown = await api(berth.url, 'POST', '/api/v1/pin', { image: 'xing/nothing:v1' }, admin);
  assert.equal(unknown.status, 404);
  const invalid = await api(berth.url, 'POST', '/api/v1/pin', { image: 'Bad Ref' }, admin);
  assert.equal(invalid.status, 400);
});
