/** @module e2e/prefetch.test — `prefetch: true`: a manifest fetched from upstream starts its blobs' fills at once, for the asked platform only, one copy each. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startRegistry, type Registry, type RegistryRequest } from '../fixtures/registry.js';
import { buildIndex, pushImage, type BuiltIndex } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { ACCEPT_ALL, httpPull } from '../fixtures/http-pull.js';
import { sleep, waitFor } from '../fixtures/proc.js';

const MiB = 1 << 20;
const PLATFORMS = ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'];
let registry: Registry;
let berth: Berth;
let index: BuiltIndex;

before(async () => {
  registry = await startRegistry();
  index = await buildIndex({ layers: 3, layerSize: 2 * MiB, tag: 'v1', platforms: PLATFORMS });
  await pushImage(index, registry.url, 'xing/multi:v1');
  berth = await startBerth({ config: { version: 0.1, proxy: { remoteurl: registry.url, prefetch: true } } });
});

after(async () => {
  await berth?.stop();
  await registry?.stop();
  await index?.remove();
});

/** Digests of the blob GETs the central registry answered with content. */
const blobGets = async (): Promise<string[]> =>
  (await registry.requests())
    .filter((r: RegistryRequest) => r.method === 'GET' && r.status === 200 && r.uri.includes('/blobs/'))
    .map((r) => r.uri.split('/blobs/')[1]!);

test('a platform manifest fetched from upstream brings its config and layers, and nothing of the other platforms', async () => {
  const amd64 = index.images[0]!;
  // The index by tag, then the platform manifest by digest, as a node does; no blob is asked for.
  const manifest = async (ref: string): Promise<void> => {
    const res = await request(`${berth.url}/v2/xing/multi/manifests/${ref}`, { headers: { accept: ACCEPT_ALL } });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
  };
  await manifest('v1');
  await sleep(500);
  assert.deepEqual(await blobGets(), [], 'an index names no platform yet: nothing is fetched ahead');
  await manifest(amd64.manifestDigest);
  const wanted = amd64.blobs.map((b) => b.digest).sort();
  await waitFor(async () => (await blobGets()).length >= wanted.length, 30_000, { what: 'the prefetched blobs to arrive upstream-side' });
  await sleep(500); // anything else that was (wrongly) started would show by now
  assert.deepEqual((await blobGets()).sort(), wanted, 'each blob of linux/amd64 once; nothing of arm64 or arm/v7');

  // The node's own pull is then served from what was prefetched: no second copy upstream.
  const pulled = await httpPull(berth.url, 'xing/multi', amd64.manifestDigest);
  assert.equal(
    pulled.blobBytes,
    amd64.blobs.reduce((n, b) => n + b.size, 0),
  );
  assert.deepEqual((await blobGets()).sort(), wanted);
});
