/** @module e2e/eviction.test — a store far smaller than the working set, clients pulling in a loop: eviction never fails a pull. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
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
    await Promise.all(Array.from({ length: 8 }, async (_, client) => {
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
    }));
    const lines = await berth.logLines();
    const cut = lines.filter((l) => l['msg'] === 'blob response cut short');
    const evictions = lines.filter((l) => l['msg'] === 'evicted least recently used content');
    assert.deepEqual(failures, [], `${failures.length} of ${pulls + failures.length} pulls failed`);
    assert.deepEqual(cut.map((l) => l['err']), [], 'no response was cut');
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
