/**
 * @module e2e/fleet-upload.test — uploads to the centre go in chunks and survive a cut link: a
 * write-behind push over a link that cuts every 12 MB lands intact.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull } from '../fixtures/clients.js';
import { startRelay, type Relay } from '../fixtures/relay.js';
import { makeTempDir, removeDir } from '../fixtures/proc.js';
import { pushModesConfig, waitForDrain } from '../fixtures/push.js';

const creds = { username: 'admin', password: 'Harbor12345' };
const MiB = 1 << 20;
const CUT_EVERY = 12 * 1_000_000;
let registry: Registry;
let relay: Relay;
let berth: Berth;
let img: BuiltImage;
let work: string;

before(async () => {
  work = await makeTempDir('berth-e2e-upload-');
  registry = await startRegistry({ auth: 'token', users: { [creds.username]: creds.password } });
  relay = await startRelay({ targetPort: registry.port });
  berth = await startBerth({ config: pushModesConfig(work, relay.url, creds) });
  img = await buildImage({ layers: 2, layerSize: 8 * MiB, tag: 'v1' });
});

after(async () => {
  await berth?.stop();
  await relay?.stop();
  await registry?.stop();
  await img?.remove();
  await removeDir(work);
});

test("write-behind over a link cut every 12 MB: uploads go in chunks, a cut upload is resumed from the registry's status or started again, and the image lands intact", async () => {
  // Every 12 MB up the link, the connection carrying them is cut.
  relay.configure({ cutUpEveryBytes: CUT_EVERY });
  const before = relay.bytesToTarget();
  const cutsBefore = relay.cuts();
  assert.equal(await pushImage(img, berth.url, 'behind/xing/cut:v1'), img.manifestDigest);
  await waitForDrain(berth, 90_000).catch(async (err: Error) => {
    const lines = (await berth.logLines()).filter((l) => l['level'] !== 30 || /replicat/.test(String(l['msg'])));
    const reqs = (await registry.requests())
      .filter((r) => r.uri.includes('/blobs/uploads/'))
      .slice(-14)
      .map((r) => `${r.method} ${r.uri.slice(0, 60)} ${r.status}`);
    throw new Error(
      `${err.message}; log: ${lines
        .slice(-8)
        .map((l) => JSON.stringify(l))
        .join('\n')}\nregistry: ${reqs.join('\n')}`,
    );
  });
  const carried = relay.bytesToTarget() - before;
  const size = img.totalSize;
  const cuts = relay.cuts() - cutsBefore;
  process.stdout.write(`# cut-link write-behind: image ${size} B, carried ${carried} B (${(carried / size).toFixed(3)}x), ${cuts} cuts\n`);
  assert.ok(cuts >= 1, `the link was cut ${cuts} times`);
  // distribution 2.8 drops an upload whose PATCH was cut (its offset check cancels it), so the
  // cut blob starts again: at most what one cut chunk's session had sent is carried twice.
  assert.ok(carried <= size + cuts * CUT_EVERY, `carried ${carried} bytes for a ${size}-byte image (${(carried / size).toFixed(2)}x)`);
  const statusChecks = (await registry.requests()).filter((r) => r.method === 'GET' && r.uri.startsWith('/v2/xing/cut/blobs/uploads/'));
  assert.ok(statusChecks.length >= 1, 'after a cut berth asked the registry where the upload stands');
  const patches = (await registry.requests()).filter((r) => r.method === 'PATCH' && r.uri.startsWith('/v2/xing/cut/blobs/uploads/'));
  assert.ok(patches.length >= 4, `uploaded in chunks (${patches.length} PATCHes)`);
  const pulled = await skopeoPull(`${registry.host}/xing/cut:v1`, path.join(work, 'pulled'), { creds });
  assert.equal(pulled.manifestDigest, img.manifestDigest);
  assert.deepEqual(pulled.blobs.map((b) => b.digest).sort(), img.blobs.map((b) => b.digest).sort());
});
