/** @module e2e/podman.test — podman as a node with `berth node-config`'s registries.conf: both `harbor.xing.com/...` and `harbor.xing.com:PORT/...` names pull through berth. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BERTH_BIN, startBerth, type Berth } from '../fixtures/berth.js';
import { HARBOR_CREDS, HARBOR_NAME, startHarbor, type Harbor } from '../fixtures/harbor.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startNetns, type Netns } from '../fixtures/netns.js';
import { startPodman, type Podman } from '../fixtures/podman.js';
import { makeTempDir, removeDir, run } from '../fixtures/proc.js';

const NS_ADDRESS = '10.213.0.7';
let work: string;
let harbor: Harbor;
let image: BuiltImage;
let berth: Berth;
let ns: Netns;
let podman: Podman;
let conf: string;

before(async () => {
  work = await makeTempDir('berth-e2e-podman-');
  harbor = await startHarbor();
  image = await buildImage({ layers: 2, layerSize: 256 * 1024, tag: 'v1' });
  await pushImage(image, harbor.registry.url, 'xing/mynginx:v1', HARBOR_CREDS);
  berth = await startBerth({ config: { version: 0.1, proxy: { remoteurl: harbor.url, resolve: '127.0.0.1', ca: harbor.certFile, ...HARBOR_CREDS } } });
  // The node: its own namespace, where harbor.xing.com resolves to a closed local port, so a
  // pull that went around berth would fail rather than leave the machine.
  ns = await startNetns(NS_ADDRESS, { hosts: [`127.0.0.1 ${HARBOR_NAME}`] });
  await ns.forward(berth.port, berth.port);
  const out = path.join(work, 'node');
  await run(process.execPath, [
    BERTH_BIN,
    'node-config',
    '--mirror',
    `http://${NS_ADDRESS}:${berth.port}`,
    '--registry',
    HARBOR_NAME,
    '--only',
    'registries',
    '--write',
    '--dir',
    out,
  ]);
  conf = path.join(out, 'etc/containers/registries.conf.d/50-berth.conf');
  podman = await startPodman({ registriesConf: conf, wrap: ns.exec });
});

after(async () => {
  await podman?.stop();
  await ns?.stop();
  await berth?.stop();
  await harbor?.stop();
  await image?.remove();
  await removeDir(work);
});

test('node-config writes an entry for the bare name and for its :PORT form', async () => {
  const text = await readFile(conf, 'utf8');
  assert.match(text, new RegExp(`^prefix = "${HARBOR_NAME}"$`, 'm'));
  assert.match(text, new RegExp(`^prefix = "${HARBOR_NAME}:${berth.port}"$`, 'm'));
});

test('podman pulls harbor.xing.com/... and harbor.xing.com:PORT/... through berth', async () => {
  assert.equal(await podman.pull(`${HARBOR_NAME}/xing/mynginx:v1`), image.manifestDigest);
  assert.equal(await podman.pull(`${HARBOR_NAME}:${berth.port}/xing/mynginx:v1`), image.manifestDigest);
  const served = (await berth.logLines()).filter(
    (l) => l['msg'] === 'request' && String(l['path']).startsWith('/v2/xing/mynginx/manifests/') && l['status'] === 200,
  );
  assert.ok(served.length >= 2, 'both pulls were answered by berth');
  // Why the second entry: with the bare name alone containers/image matches it and rewrites the :PORT form into an invalid reference.
  const bareOnly = path.join(work, 'bare.conf');
  await writeFile(bareOnly, (await readFile(conf, 'utf8')).split('\n[[registry]]').slice(0, 2).join('\n[[registry]]'));
  const bare = await startPodman({ registriesConf: bareOnly, wrap: ns.exec });
  try {
    await assert.rejects(bare.pull(`${HARBOR_NAME}:${berth.port}/xing/mynginx:v1`), /invalid reference format/);
  } finally {
    await bare.stop();
  }
  const layerGets = (await harbor.registry.requests()).filter((r) => r.method === 'GET' && r.uri.includes(image.layers[0]!.digest) && r.status === 200);
  assert.equal(layerGets.length, 1, 'Harbor sent the layer once');
});
