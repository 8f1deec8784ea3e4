/** @module e2e/eviction.test — a store far smaller than the working set, clients pulling in a loop, and an upstream outage: eviction never fails a pull. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth } from '../fixtures/berth.js';
import { httpPull } from '../fixtures/http-pull.js';
import { BERTH_BIN } from '../fixtures/berth.js';
import { makeTempDir, removeDir, run } from '../fixtures/proc.js';

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

test('eight clients pulling five images through a store that holds two: every pull succeeds and every byte verifies', async () => {
  // Two images fit; every pull of a third evicts what another client may be looking up right now.
  const berth = await startBerth({
    config: { version: 0.1, storage: { maxsize: '20MiB', lowwatermark: 0.7 } },
    proxy: { remoteurl: registry.url, username: 'admin', password: users.admin, tagttl: '1s' },
  });
  const failures: string[] = [];
  let pulls = 0;
  try {
    const until = Date.now() + 20_000;
    await Promise.all(
      Array.from({ length: 8 }, async (_, client) => {
        for (let n = 0; Date.now() < until; n++) {
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
  const cached = await buildImage({ layers: 2, layerSize: 1024 * 1024, tag: 'cached' });
  const uncached = await buildImage({ layers: 1, layerSize: 64 * 1024, tag: 'uncached' });
  const pushed = await buildImage({ layers: 2, layerSize: 1536 * 1024, tag: 'pushed' });
  images.push(cached, uncached, pushed);
  await pushImage(cached, registry.url, 'outage/cached:v1', creds);
  await pushImage(uncached, registry.url, 'outage/uncached:v1', creds);
  const htpasswd = path.join(work, 'htpasswd');
  await writeFile(htpasswd, `${(await run('htpasswd', ['-Bbn', 'ci', 'ci-pw'])).stdout.trim()}\n`);
  const upstream = { remoteurl: registry.url, username: 'admin', password: users.admin, tagttl: '1s' };
  const berth = await startBerth({
    config: {
      version: 0.1,
      storage: { maxsize: '5MiB', lowwatermark: 0.5 },
      auth: {
        htpasswd: { realm: 'berth', path: htpasswd },
        rules: [
          { users: ['anonymous'], repositories: ['*'], actions: ['pull'] },
          { users: ['ci'], repositories: ['*'], actions: ['*'] },
        ],
      },
      upstreams: [
        { name: 'central', ...upstream, prefix: 'central', default: true },
        { name: 'behind', ...upstream, prefix: 'behind', pushmode: 'write-behind' },
      ],
    },
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
