/** @module e2e/eviction.test — a store far smaller than the working set, clients pulling in a loop, and an upstream outage: eviction never fails a pull or a push. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth } from '../fixtures/berth.js';
import { httpPull } from '../fixtures/http-pull.js';
import { BERTH_BIN } from '../fixtures/berth.js';
import { makeTempDir, removeDir, run, waitFor } from '../fixtures/proc.js';
import { OCI_MANIFEST, assertError, call, makeManifest, uploadBlob } from '../fixtures/oci-http.js';

const users = { admin: 'Harbor12345' };
const creds = { username: 'admin', password: users.admin };
let registry: Registry;
let work: string;
const images: BuiltImage[] = [];

before(async () => {
  work = await makeTempDir('berth-e2e-eviction-');
  registry = await startRegistry({ auth: 'token', users });
  for (let i = 0; i < 5; i++) {
    const img = await buildImage({ layers: 3, layerSize: 3 * 1024 * 1024, tag: `e${i}` });
    images.push(img);
    await pushImage(img, registry.url, `churn/img${i}:v1`, creds);
  }
});

after(async () => {
  await registry?.stop();
  await Promise.all(images.map((i) => i.remove()));
  await removeDir(work);
});

/** At the central registry: `<prefix>/cached:v1` (2 x 1 MiB, for berth to cache) and `<prefix>/uncached:v1` (64 KiB). */
async function atCentral(prefix: string): Promise<{ cached: BuiltImage; uncached: BuiltImage }> {
  const cached = await buildImage({ layers: 2, layerSize: 1024 * 1024, tag: `${prefix}-cached` });
  const uncached = await buildImage({ layers: 1, layerSize: 64 * 1024, tag: `${prefix}-uncached` });
  images.push(cached, uncached);
  await pushImage(cached, registry.url, `${prefix}/cached:v1`, creds);
  await pushImage(uncached, registry.url, `${prefix}/uncached:v1`, creds);
  return { cached, uncached };
}

/** A small store (lowwatermark 0.5), anonymous pulls, and user `ci` (password `ci-pw`) who may push. */
async function pushingConfig(maxsize: string, upstreams: Array<Record<string, unknown>>): Promise<Record<string, unknown>> {
  const htpasswd = path.join(work, 'htpasswd');
  await writeFile(htpasswd, `${(await run('htpasswd', ['-Bbn', 'ci', 'ci-pw'])).stdout.trim()}\n`);
  return {
    version: 0.1,
    storage: { maxsize, lowwatermark: 0.5 },
    auth: {
      htpasswd: { realm: 'berth', path: htpasswd },
      rules: [
        { users: ['anonymous'], repositories: ['*'], actions: ['pull'] },
        { users: ['ci'], repositories: ['*'], actions: ['*'] },
      ],
    },
    upstreams,
  };
}

test('eight clients pulling five images through a store that holds two: every pull succeeds and every byte verifies', async () => {
  // Two images fit; every pull of a third evicts what another client may be looking up right now.
  const berth = await startBerth({
    config: { version: 0.1, storage: { maxsize: '20MiB', lowwatermark: 0.7 } },
    proxy: { remoteurl: registry.url, username: 'admin', password: users.admin, tagttl: '1s' },
  });
  const failures: string[] = [];
  let pulls = 0;
  try {
    // At least 12 s of churn and at least five eviction passes (a loaded machine pulls slower), at most 90 s.
    const until = Date.now() + 12_000;
    const cap = Date.now() + 90_000;
    let passes = 0;
    const counting = setInterval(() => {
      void berth.logLines().then((lines) => {
        passes = lines.filter((l) => l['msg'] === 'evicted least recently used content').length;
      });
    }, 500);
    const churning = () => (Date.now() < until || passes < 5) && Date.now() < cap;
    await Promise.all(
      Array.from({ length: 8 }, async (_, client) => {
        for (let n = 0; churning(); n++) {
          const i = (client * 3 + n * 7) % images.length;
          const byDigest = (client + n) % 3 === 0;
          const img = images[i]!;
          try {
            const got = await httpPull(berth.url, `churn/img${i}`, byDigest ? img.manifestDigest : 'v1');
            assert.equal(got.manifestDigest, img.manifestDigest);
            pulls++;
          } catch (err) {
            failures.push(`client ${client} churn/img${i}: ${(err as Error).message}`);
          }
        }
      }),
    );
    clearInterval(counting);
    const lines = await berth.logLines();
    const cut = lines.filter((l) => l['msg'] === 'blob response cut short');
    const evictions = lines.filter((l) => l['msg'] === 'evicted least recently used content');
    assert.deepEqual(failures, [], `${failures.length} of ${pulls + failures.length} pulls failed`);
    assert.deepEqual(
      cut.map((l) => l['err']),
      [],
      'no response was cut',
    );
    assert.ok(evictions.length >= 5, `eviction ran under the load (${evictions.length} passes)`);
    assert.ok(pulls >= 20, `enough pulls to matter (${pulls})`);
  } finally {
    await berth.kill('SIGTERM');
  }
  // Nothing was corrupted or left inconsistent by the churn.
  const fsck = await run(process.execPath, [BERTH_BIN, 'fsck', '--config', berth.configFile]);
  assert.match(fsck.stdout, / 0 corrupt/);
  await berth.cleanup();
});

test('upstream down: a write-behind push over maxsize does not evict cached images berth could not fetch again', async () => {
  const { cached } = await atCentral('outage');
  const pushed = await buildImage({ layers: 2, layerSize: 1536 * 1024, tag: 'pushed' });
  images.push(pushed);
  const upstream = { remoteurl: registry.url, username: 'admin', password: users.admin, tagttl: '1s' };
  const berth = await startBerth({
    config: await pushingConfig('5MiB', [
      { name: 'central', ...upstream, prefix: 'central', default: true },
      { name: 'behind', ...upstream, prefix: 'behind', pushmode: 'write-behind' },
    ]),
  });
  try {
    assert.equal((await httpPull(berth.url, 'outage/cached', 'v1')).manifestDigest, cached.manifestDigest);
    await registry.down();
    try {
      // Uncached content fails (503) until berth calls the upstream down.
      for (let i = 0; i < 3; i++) await assert.rejects(httpPull(berth.url, 'outage/uncached', 'v1'), /503/);
      // Accepted locally and queued; the store is now over maxsize.
      assert.equal(await pushImage(pushed, berth.url, 'behind/outage/pushed:v1', { username: 'ci', password: 'ci-pw' }), pushed.manifestDigest);
      const got = await httpPull(berth.url, 'outage/cached', cached.manifestDigest);
      assert.equal(got.manifestDigest, cached.manifestDigest, 'the cached image is still served during the outage');
      assert.equal((await httpPull(berth.url, 'outage/cached', 'v1')).manifestDigest, cached.manifestDigest, 'and by its tag');
    } finally {
      await registry.up();
    }
  } finally {
    await berth.stop();
  }
});

test('a push whose manifest comes after an eviction pass keeps its layers, and a manifest berth cannot check answers 503', async () => {
  const behind = await startRegistry({ auth: 'none' });
  const { cached } = await atCentral('grace');
  const older = await buildImage({ layers: 1, layerSize: 1024 * 1024, tag: 'grace-older' });
  images.push(older);
  await pushImage(older, behind.url, 'grace/older:v1');
  const berth = await startBerth({
    config: await pushingConfig('6MiB', [
      { name: 'central', remoteurl: registry.url, username: 'admin', password: users.admin, tagttl: '1s', prefix: 'central', default: true },
      { name: 'behind', remoteurl: behind.url, tagttl: '1s', prefix: 'behind', pushmode: 'write-behind' },
    ]),
  });
  const auth = { authorization: `Basic ${Buffer.from('ci:ci-pw').toString('base64')}` };
  const upload = (repo: string, data: Buffer): Promise<string> => uploadBlob(berth.url, repo, data, 'sha256', auth);
  const atBehind = async (repo: string, digest: string) => (await call(behind.url, 'HEAD', `/v2/${repo}/blobs/${digest}`)).status === 200;
  try {
    assert.equal((await httpPull(berth.url, 'grace/cached', 'v1')).manifestDigest, cached.manifestDigest);
    assert.equal((await httpPull(berth.url, 'behind/grace/older', 'v1')).manifestDigest, older.manifestDigest);
    // A push under way: its layers are stored (and replicated), its manifest not sent yet.
    const app = makeManifest(randomBytes(512), [randomBytes(1280 * 1024), randomBytes(1280 * 1024)]);
    for (const b of [app.config, ...app.layers]) await upload('behind/grace/app', b.data);
    await waitFor(async () => (await Promise.all(app.layers.map((l) => atBehind('grace/app', l.digest)))).every(Boolean), 20_000, {
      what: 'the pushed layers replicated',
    });
    await registry.down();
    try {
      // berth calls the default upstream down: its cached content may not be evicted now.
      for (let i = 0; i < 3; i++) await assert.rejects(httpPull(berth.url, 'grace/uncached', 'v1'), /503/);
      // Over maxsize: the pass evicts the older image, and only it.
      await upload('behind/grace/other', randomBytes(1024 * 1024));
      const passes = async () => (await berth.logLines()).filter((l) => l['msg'] === 'evicted least recently used content');
      await waitFor(async () => (await passes()).length > 0, 20_000, { what: 'an eviction pass' });
      assert.deepEqual(
        (await passes()).map((l) => l['evicted']),
        [3],
        'the older image (manifest, config and layer), and nothing of the push under way',
      );
      await behind.down();
      try {
        const put = await call(berth.url, 'PUT', '/v2/behind/grace/app/manifests/v1', { body: app.bytes, headers: { ...auth, 'content-type': OCI_MANIFEST } });
        assert.equal(put.status, 201, `the push completes from berth's own copy of its layers: ${put.body.toString()}`);
        const stray = makeManifest(randomBytes(512), [randomBytes(1024)]);
        await upload('behind/grace/stray', stray.config.data);
        const unknown = await call(berth.url, 'PUT', '/v2/behind/grace/stray/manifests/v1', {
          body: stray.bytes,
          headers: { ...auth, 'content-type': OCI_MANIFEST },
        });
        assertError(unknown, 503, 'UNAVAILABLE');
        assert.match(unknown.body.toString(), /could not be asked/);
      } finally {
        await behind.up();
      }
    } finally {
      await registry.up();
    }
    await waitFor(async () => (await call(behind.url, 'HEAD', '/v2/grace/app/manifests/v1', { headers: { accept: OCI_MANIFEST } })).status === 200, 30_000, {
      what: 'the manifest replicated',
    });
  } finally {
    await berth.stop();
    await behind.stop();
  }
});
