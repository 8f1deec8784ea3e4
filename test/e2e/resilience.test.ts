/** @module e2e/resilience.test — WAN outages, a flapping link, bounded disk, a full disk and crashes, against the real registry. */
/** @serial outage and flapping-link timings. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { BERTH_BIN, startBerth } from '../fixtures/berth.js';
import { skopeoPull, startContainerd, writeHostsToml } from '../fixtures/clients.js';
import { startRelay } from '../fixtures/relay.js';
import { makeTempDir, removeDir, run, sleep, waitFor } from '../fixtures/proc.js';
import { ACCEPT_ALL, httpPull } from '../fixtures/http-pull.js';

const users = { admin: 'Harbor12345' };
const creds = { username: 'admin', password: users.admin };
let registry: Registry;
let work: string;
const images: BuiltImage[] = [];

async function image(layers: number, layerSize: number, tag = 'v1'): Promise<BuiltImage> {
  const img = await buildImage({ layers, layerSize, tag });
  images.push(img);
  return img;
}

before(async () => {
  work = await makeTempDir('berth-e2e-resilience-');
  registry = await startRegistry({ auth: 'token', users });
});

after(async () => {
  await registry?.stop();
  await Promise.all(images.map((i) => i.remove()));
  await removeDir(work);
});

const blobBytes = async () => (await registry.requests()).filter((r) => r.method === 'GET' && r.uri.includes('/blobs/')).reduce((n, r) => n + r.written, 0);

async function storeBytes(root: string): Promise<number> {
  let total = 0;
  const base = path.join(root, 'blobs', 'sha256');
  for (const prefix of await readdir(base).catch(() => [] as string[])) {
    for (const f of await readdir(path.join(base, prefix))) total += (await stat(path.join(base, prefix, f))).size;
  }
  return total;
}

test('tag freshness: zero upstream requests within tagttl, then one shared HEAD; digests never re-asked', async () => {
  const img = await image(1, 64 * 1024, 'fresh');
  await pushImage(img, registry.url, 'fresh/app:v1', creds);
  const berth = await startBerth({ proxy: { remoteurl: registry.url, username: 'admin', password: users.admin, tagttl: '3s' } });
  const manifestRequests = async () => (await registry.requests()).filter((r) => r.uri.startsWith('/v2/fresh/app/manifests/'));
  const get = async (ref: string) => {
    const res = await request(`${berth.url}/v2/fresh/app/manifests/${ref}`, { headers: { accept: ACCEPT_ALL } });
    await res.body.dump();
    assert.equal(res.statusCode, 200);
  };
  try {
    await get('v1');
    const afterFill = (await manifestRequests()).length;
    for (let i = 0; i < 10; i++) await get('v1');
    for (let i = 0; i < 5; i++) await get(img.manifestDigest);
    assert.equal((await manifestRequests()).length, afterFill, 'within tagttl and by digest: no upstream request');
    await sleep(3_200);
    await Promise.all(Array.from({ length: 10 }, () => get('v1')));
    const revalidation = (await manifestRequests()).slice(afterFill);
    assert.deepEqual(
      revalidation.map((r) => r.method),
      ['HEAD'],
      'one conditional HEAD shared by all, no GET when unchanged',
    );
  } finally {
    await berth.stop();
  }
});

test('central registry down: cached tags and digests still pull, a cold restart serves them, uncached fails fast, a moved tag is picked up after', async () => {
  const v1 = await image(2, 2 * 1024 * 1024, 'v1');
  const v2 = await image(2, 2 * 1024 * 1024, 'v2');
  const other = await image(1, 1024 * 1024, 'other');
  await pushImage(v1, registry.url, 'xing/app:v1', creds);
  await pushImage(other, registry.url, 'xing/other:v1', creds);
  const proxy = { remoteurl: registry.url, username: 'admin', password: users.admin, tagttl: '2s' };
  const cleanups: Array<() => Promise<void>> = [];
  let berth = await startBerth({ proxy });
  const hostsDir = path.join(work, 'hosts');
  await writeHostsToml(hostsDir, 'harbor.xing.com', berth.url);
  try {
    await skopeoPull(`${berth.host}/xing/app:v1`, path.join(work, 'warm'));
    await registry.down();
    await sleep(2_500); // past tagttl: berth must try upstream, fail, and serve the last known digest
    assert.equal((await skopeoPull(`${berth.host}/xing/app:v1`, path.join(work, 'out1'))).manifestDigest, v1.manifestDigest);
    assert.equal((await skopeoPull(`${berth.host}/xing/app@${v1.manifestDigest}`, path.join(work, 'out2'))).manifestDigest, v1.manifestDigest);
    const node = await startContainerd();
    try {
      await node.pull('harbor.xing.com/xing/app:v1', { hostsDir, plainHttp: true });
      assert.ok((await node.images()).some((i) => i.digest === v1.manifestDigest));
    } finally {
      await node.stop();
    }
    const started = Date.now();
    const miss = await request(`${berth.url}/v2/xing/other/manifests/v1`, { headers: { accept: ACCEPT_ALL } });
    const body = (await miss.body.json()) as { errors: Array<{ code: string; message: string }> };
    assert.equal(body.errors[0]?.code, 'UNAVAILABLE');
    assert.match(body.errors[0].message, /unreachable/);
    assert.ok(Date.now() - started < 10_000, 'an uncached tag must fail fast, not hang');

    // Cold restart during the outage: berth comes up and serves its cache.
    const root = berth.root;
    const previous = berth;
    await previous.kill('SIGTERM');
    berth = await startBerth({ proxy, root, port: previous.port });
    cleanups.push(() => previous.cleanup());
    assert.equal((await skopeoPull(`${berth.host}/xing/app:v1`, path.join(work, 'out3'))).manifestDigest, v1.manifestDigest);

    const outageLines = (await berth.logLines()).filter(
      (l) => l['msg'] === 'upstream unreachable: serving from cache, failing fast for uncached content until it answers again',
    );
    assert.ok(outageLines.length <= 1, 'an outage is logged once, not per request');

    // Back up, and the tag moved while berth could not see it.
    await registry.up();
    await pushImage(v2, registry.url, 'xing/app:v1', creds);
    await waitFor(
      async () => {
        const res = await request(`${berth.url}/v2/xing/app/manifests/v1`, { method: 'HEAD', headers: { accept: ACCEPT_ALL } });
        await res.body.dump();
        return res.headers['docker-content-digest'] === v2.manifestDigest;
      },
      30_000,
      { what: 'moved tag picked up', intervalMs: 500 },
    );
    assert.equal((await httpPull(berth.url, 'xing/app', 'v1')).manifestDigest, v2.manifestDigest);
  } finally {
    await registry.up().catch(() => undefined);
    await berth.stop();
    for (const c of cleanups) await c();
  }
});

test('a link that cuts connections mid-transfer: pulls complete verified, bytes across the link under 1.2x the image', async () => {
  // Bytes in flight when a link dies are lost; on loopback the kernel's socket buffers hold a few MiB,
  // so the image is large next to them, as a real image is next to a WAN link's bytes in flight.
  const img = await image(2, 24 * 1024 * 1024, 'flaky');
  await pushImage(img, registry.url, 'xing/flaky:v1', creds);
  const relay = await startRelay({ targetPort: registry.port, rateBytesPerSec: 32 * 1024 * 1024 });
  // One process: every worker runs its own start-up checks, and only the lead logs them, so with
  // several the test could not tell when the checks' connections are done and the cuts may begin.
  const berth = await startBerth({ env: { REGISTRY_HTTP_WORKERS: '1' }, proxy: { remoteurl: relay.url, username: 'admin', password: users.admin } });
  try {
    // berth's start-up checks open connections of their own: cut only the ones opened after them.
    await waitFor(async () => (await berth.logLines()).some((l) => l['check'] === 'credentials'), 20_000, { what: 'start-up checks' });
    relay.configure({ rateBytesPerSec: 32 * 1024 * 1024, cutAfterBytes: 8 * 1024 * 1024, cutConnections: 2 });
    const before = relay.bytesToClient();
    const pulls = await Promise.all([httpPull(berth.url, 'xing/flaky', 'v1'), httpPull(berth.url, 'xing/flaky', 'v1')]);
    for (const p of pulls) assert.equal(p.manifestDigest, img.manifestDigest);
    assert.ok(relay.cuts() >= 1, 'the relay must actually have cut connections');
    // What reached berth, not what the registry wrote: the bytes a cut strands in the socket
    // buffers on the registry's side (up to several MiB each on loopback, as the registry's load
    // decides; 1.14-1.2x the image here) are the link's loss. A fetch started again from byte 0
    // after each cut at 8 MiB of a 24 MiB layer would bring 1.33x; resumed where it stopped, 1.0x.
    const crossed = relay.bytesToClient() - before;
    assert.ok(crossed < img.totalSize * 1.2, `berth received ${crossed} bytes across the link for ${img.totalSize}`);
    const resumed = (await berth.logLines()).filter((l) => l['msg'] === 'upstream transfer interrupted; resuming');
    assert.ok(resumed.length >= 1);
  } finally {
    await berth.stop();
    await relay.stop();
  }
});

test('storage.maxsize: pulling images in turn keeps the store bounded and the newest image cached; every image still pulls', async () => {
  const imgs = [await image(1, 6 * 1024 * 1024, 'a'), await image(1, 6 * 1024 * 1024, 'b'), await image(1, 6 * 1024 * 1024, 'c')];
  for (const [i, img] of imgs.entries()) await pushImage(img, registry.url, `lru/img${i}:v1`, creds);
  await pushImage(imgs[0]!, registry.url, 'lru/shared:v1', creds);
  const maxsize = 14 * 1024 * 1024;
  const berth = await startBerth({
    config: { version: 0.1, storage: { maxsize: '14MiB', lowwatermark: 0.8 } },
    proxy: { remoteurl: registry.url, username: 'admin', password: users.admin },
  });
  try {
    for (const [i] of imgs.entries()) {
      await httpPull(berth.url, `lru/img${i}`, 'v1');
      await waitFor(async () => (await storeBytes(berth.root)) <= maxsize, 10_000, { what: 'store under maxsize' });
    }
    const before = await blobBytes();
    await httpPull(berth.url, 'lru/img2', 'v1');
    assert.equal(await blobBytes(), before, 'the most recently pulled image is fully cached');
    // Everything still pulls (evicted content is fetched again), including an image sharing blobs with an evicted one.
    for (const repo of ['lru/img0', 'lru/shared', 'lru/img1', 'lru/img2']) await httpPull(berth.url, repo, 'v1');
    const evictions = (await berth.logLines()).filter((l) => l['msg'] === 'evicted least recently used content');
    assert.ok(evictions.length >= 1);
  } finally {
    await berth.stop();
  }
});

test('a full disk mid-pull: the pull still succeeds through berth, and berth keeps serving', async (t) => {
  const mountpoint = await makeTempDir('berth-tmpfs-');
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=10m', 'tmpfs', mountpoint]);
  } catch (err) {
    t.skip(`cannot mount tmpfs here: ${(err as Error).message}`);
    return;
  }
  const big = await image(1, 16 * 1024 * 1024, 'big');
  const small = await image(1, 512 * 1024, 'small');
  await pushImage(big, registry.url, 'disk/big:v1', creds);
  await pushImage(small, registry.url, 'disk/small:v1', creds);
  const berth = await startBerth({ root: path.join(mountpoint, 'store'), proxy: { remoteurl: registry.url, username: 'admin', password: users.admin } });
  try {
    assert.equal((await httpPull(berth.url, 'disk/big', 'v1')).manifestDigest, big.manifestDigest);
    assert.equal((await httpPull(berth.url, 'disk/small', 'v1')).manifestDigest, small.manifestDigest);
    assert.deepEqual(await readdir(path.join(berth.root, 'tmp')), [], 'the partial file is removed');
    const full = (await berth.logLines()).filter((l) => l['msg'] === 'disk full while storing a blob: passing bytes through to clients, evicting');
    assert.equal(full.length, 1, 'disk full is logged once');
    assert.equal((await skopeoPull(`${berth.host}/disk/small:v1`, path.join(work, 'small'))).manifestDigest, small.manifestDigest);
  } finally {
    await berth.stop();
    await run('umount', [mountpoint]).catch(() => undefined);
    await removeDir(mountpoint);
  }
});

test('SIGKILL at random moments across 20 cold pulls, restart, berth fsck: zero corrupt blobs', async () => {
  const crashImages: BuiltImage[] = [];
  for (let i = 0; i < 20; i++) {
    const img = await image(2, 1024 * 1024, `c${i}`);
    await pushImage(img, registry.url, `crash/img${i}:v1`, creds);
    crashImages.push(img);
  }
  const relay = await startRelay({ targetPort: registry.port, rateBytesPerSec: 8 * 1024 * 1024 });
  const proxy = { remoteurl: relay.url, username: 'admin', password: users.admin };
  const first = await startBerth({ proxy });
  const { root, port } = first;
  await first.kill('SIGKILL');
  const dirs = [first];
  try {
    for (let i = 0; i < 20; i++) {
      const b = await startBerth({ proxy, root, port });
      dirs.push(b);
      const pulling = httpPull(b.url, `crash/img${i}`, 'v1').catch((e: Error) => e);
      await sleep(Math.floor(Math.random() * 300));
      await b.kill('SIGKILL');
      await pulling;
    }
    const config = path.join(work, 'fsck.yml');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(config, `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${JSON.stringify(root)}\n`);
    const fsck = spawnSync(process.execPath, [BERTH_BIN, 'fsck', '--config', config], { encoding: 'utf8' });
    assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
    assert.match(fsck.stdout, / 0 corrupt/);
    const b = await startBerth({ proxy, root, port });
    try {
      for (let i = 0; i < 20; i++) assert.equal((await httpPull(b.url, `crash/img${i}`, 'v1')).manifestDigest, crashImages[i]!.manifestDigest);
    } finally {
      await b.stop();
    }
  } finally {
    await relay.stop();
    for (const d of dirs) await d.cleanup();
  }
});

test('SIGTERM: no new connections, the transfer in flight finishes, exit status 0', async () => {
  const img = await image(1, 8 * 1024 * 1024, 'term');
  await pushImage(img, registry.url, 'term/app:v1', creds);
  const relay = await startRelay({ targetPort: registry.port, rateBytesPerSec: 4 * 1024 * 1024 });
  const berth = await startBerth({ proxy: { remoteurl: relay.url, username: 'admin', password: users.admin } });
  try {
    const layer = img.layers[0]!;
    const res = await request(`${berth.url}/v2/term/app/blobs/${layer.digest}`);
    assert.equal(res.statusCode, 200);
    berth.service.kill('SIGTERM');
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256');
    for await (const chunk of res.body) hash.update(chunk as Buffer);
    assert.equal(`sha256:${hash.digest('hex')}`, layer.digest, 'the response in flight completes verified');
    const exit = await berth.service.exited;
    assert.equal(exit.code, 0);
    await assert.rejects(request(`${berth.url}/v2/`), 'no new connections after SIGTERM');
  } finally {
    await relay.stop();
    await berth.cleanup();
  }
});

test('a hung link (connections accepted, never answered): cached tags are still served promptly', async () => {
  const img = await image(1, 256 * 1024, 'hung');
  await pushImage(img, registry.url, 'hung/app:v1', creds);
  const relay = await startRelay({ targetPort: registry.port });
  const berth = await startBerth({ proxy: { remoteurl: relay.url, username: 'admin', password: users.admin, tagttl: '1s' } });
  try {
    await httpPull(berth.url, 'hung/app', 'v1');
    relay.configure({ blackhole: true });
    relay.dropAll();
    await sleep(1_200);
    // Far below the upstream first-byte timeout (30 s): the answer must not wait for it.
    const { Agent } = await import('undici');
    const impatient = new Agent({ headersTimeout: 15_000 });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await request(`${berth.url}/v2/hung/app/manifests/v1`, { headers: { accept: ACCEPT_ALL }, dispatcher: impatient });
        await res.body.dump();
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['docker-content-digest'], img.manifestDigest);
      }
    } finally {
      await impatient.close();
    }
    const outcomes = (await berth.logLines()).filter((l) => l['msg'] === 'request' && l['path'] === '/v2/hung/app/manifests/v1').map((l) => l['outcome']);
    assert.ok(outcomes.includes('stale'));
  } finally {
    await berth.stop();
    await relay.stop();
  }
});
