/** @module e2e/pull.test — pulls through berth from a real token-auth central registry with real clients. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull, startContainerd, startDockerd, writeHostsToml } from '../fixtures/clients.js';
import { makeTempDir, removeDir } from '../fixtures/proc.js';
import { httpPull } from '../fixtures/http-pull.js';

const users = { admin: 'Harbor12345' };
let registry: Registry;
let berth: Berth;
let image: BuiltImage;
let work: string;

before(async () => {
  work = await makeTempDir('berth-e2e-pull-');
  registry = await startRegistry({ auth: 'token', users });
  image = await buildImage({ layers: 3, layerSize: 4 * 1024 * 1024, tag: 'v1' });
  await pushImage(image, registry.url, 'xing/app:v1', { username: 'admin', password: users.admin });
  berth = await startBerth({ proxy: { remoteurl: registry.url, username: 'admin', password: users.admin } });
});

after(async () => {
  await berth?.stop();
  await registry?.stop();
  await image?.remove();
  await removeDir(work);
});

const blobBytesSent = async () => (await registry.requests()).filter((r) => r.method === 'GET' && r.uri.includes('/blobs/')).reduce((n, r) => n + r.written, 0);

test('skopeo pulls through berth; a second pull costs the central registry no blob bytes', async () => {
  const before1 = await blobBytesSent();
  const first = await skopeoPull(`${berth.host}/xing/app:v1`, path.join(work, 'skopeo1'));
  assert.equal(first.manifestDigest, image.manifestDigest);
  assert.deepEqual(first.blobs.map((b) => b.digest).sort(), image.blobs.map((b) => b.digest).sort());
  const afterFirst = await blobBytesSent();
  const blobTotal = image.blobs.reduce((n, b) => n + b.size, 0);
  assert.ok(afterFirst - before1 <= blobTotal * 1.05, `first pull cost ${afterFirst - before1} blob bytes for ${blobTotal}`);
  const second = await skopeoPull(`${berth.host}/xing/app@${image.manifestDigest}`, path.join(work, 'skopeo2'));
  assert.equal(second.manifestDigest, image.manifestDigest);
  assert.equal(await blobBytesSent(), afterFirst, 'second pull must be served from the cache');
});

test('two containerd nodes pull harbor.xing.com/xing/app:v1 through a hosts.toml mirror', async () => {
  const hostsDir = path.join(work, 'hosts');
  await writeHostsToml(hostsDir, 'harbor.xing.com', berth.url);
  const nodes = await Promise.all([startContainerd(), startContainerd()]);
  try {
    const sentBefore = await blobBytesSent();
    for (const node of nodes) {
      await node.pull('harbor.xing.com/xing/app:v1', { hostsDir, plainHttp: true });
      const images = await node.images();
      assert.ok(
        images.some((i) => i.ref === 'harbor.xing.com/xing/app:v1' && i.digest === image.manifestDigest),
        JSON.stringify(images),
      );
    }
    assert.equal(await blobBytesSent(), sentBefore, 'content already cached: the nodes cost the central registry no blob bytes');
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
});

test('dockerd pulls through berth', async () => {
  const docker = await startDockerd({ insecureRegistries: [berth.host] });
  try {
    const sentBefore = await blobBytesSent();
    await docker.pull(`${berth.host}/xing/app:v1`);
    assert.equal(await blobBytesSent(), sentBefore);
  } finally {
    await docker.stop();
  }
});

test('30 concurrent cold pulls cost the central registry one copy, and every client gets verified bytes', async () => {
  const cold = await buildImage({ layers: 2, layerSize: 16 * 1024 * 1024, tag: 'cold' });
  try {
    await pushImage(cold, registry.url, 'xing/cold:v1', { username: 'admin', password: users.admin });
    const sentBefore = await registry.bytesSent();
    const results = await Promise.all(Array.from({ length: 30 }, () => httpPull(berth.url, 'xing/cold', 'v1')));
    for (const r of results) assert.equal(r.manifestDigest, cold.manifestDigest);
    const sent = (await registry.bytesSent()) - sentBefore;
    assert.ok(sent <= cold.totalSize * 1.05, `central registry sent ${sent} bytes for an image of ${cold.totalSize}`);
    const outcomes = (await berth.logLines())
      .filter((l) => l['msg'] === 'request' && String(l['path']).startsWith('/v2/xing/cold/blobs/'))
      .map((l) => l['outcome']);
    assert.ok(outcomes.includes('joined'), 'concurrent requests must join the fill in progress');
  } finally {
    await cold.remove();
  }
});

test('berths chain: a site berth whose upstream is a regional berth pulls verified, one copy crosses each hop', async () => {
  const chained = await buildImage({ layers: 2, layerSize: 4 * 1024 * 1024, tag: 'chain' });
  const regional = await startBerth({ proxy: { remoteurl: registry.url, username: 'admin', password: users.admin } });
  const site = await startBerth({ proxy: { remoteurl: regional.url } });
  try {
    await pushImage(chained, registry.url, 'xing/chain:v1', { username: 'admin', password: users.admin });
    const before = await blobBytesSent();
    const results = await Promise.all(Array.from({ length: 5 }, () => httpPull(site.url, 'xing/chain', 'v1')));
    for (const r of results) assert.equal(r.manifestDigest, chained.manifestDigest);
    const blobTotal = chained.blobs.reduce((n, b) => n + b.size, 0);
    assert.equal((await blobBytesSent()) - before, blobTotal, 'the central registry sent each blob once');
    const regionalFills = (await regional.logLines()).filter((l) => l['msg'] === 'blob fill complete');
    assert.equal(regionalFills.length, chained.blobs.length, 'the regional berth filled each blob once');
  } finally {
    await site.stop();
    await regional.stop();
    await chained.remove();
  }
});
