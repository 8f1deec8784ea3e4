/** @module e2e/lazy-pull.test — a real lazy pull: containerd with the stargz snapshotter pulls an eStargz image through a cold berth and reads files from it. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { waitFor } from '../fixtures/proc.js';
import { buildFilesImage, convertToEstargz, pushLayout, startStargzNode, stargzMissing, type StargzNode } from '../fixtures/stargz.js';

/** The name nodes use for the central registry; only hosts.toml knows it is berth. */
const CENTRAL_NAME = 'central.test';
const REPO = 'lazy/app';

/** Outside CI a machine without the built snapshotter skips; in CI (.ci/run builds it) the test must run. */
const missing = await stargzMissing();
const skip = missing && process.env['CI'] !== 'true' ? `the stargz snapshotter is not built here (${missing})` : false;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** 16 MiB of incompressible files around one small text file: a lazy read of the text file needs a few chunks only. */
const note = Buffer.from('berth served this file lazily, one chunk at a time.\n');
const files: Record<string, Buffer> = { 'etc/berth/note.txt': note };
for (let i = 0; i < 8; i++) files[`data/blob-${i}.bin`] = randomBytes(2 << 20);

let central: Registry;
let berth: Berth;

before(async () => {
  if (skip) return;
  assert.equal(missing, null, `CI=true and ${missing}`);
  central = await startRegistry();
  const layout = await buildFilesImage(files);
  try {
    await pushLayout(layout, central.host, 'lazy/src:v1');
  } finally {
    await layout.remove();
  }
  await convertToEstargz(`${central.host}/lazy/src:v1`, `${central.host}/${REPO}:v1`);
  // The whole-layer fill a range starts waits until the layer's ranges have been quiet this long:
  // longer than the test, so the snapshotter's reads cross the link alone and their bytes can be
  // bounded; the test then asks for the whole layer, which starts the fill at once.
  berth = await startBerth({ proxy: { remoteurl: central.url, rangequiet: '10m' } });
});

after(async () => {
  await berth?.stop();
  await central?.stop();
});

interface LazyStart {
  rpullMs: number;
  /** Bytes the central registry sent for the rpull, then for reading the two files. */
  startBytes: number;
  readBytes: number;
  layer: { digest: string; size: number };
  /** GETs of the layer blob the central registry answered, and how many of them with 206 (a range). */
  layerGets: number;
  rangeGets: number;
}

/**
 * A fresh lazy-pulling node with `mirrorUrl` as its only way to the central registry: rpull,
 * check the layer stayed remote, mount it and read two files byte-exact.
 */
async function lazyStart(mirrorUrl: string): Promise<LazyStart> {
  const node: StargzNode = await startStargzNode({ registryName: CENTRAL_NAME, mirrorUrl });
  try {
    const requestsBefore = (await central.requests()).length;
    const before = await central.bytesSent();
    const started = Date.now();
    await node.rpull(`${CENTRAL_NAME}/${REPO}:v1`);
    const rpullMs = Date.now() - started;
    const afterPull = await central.bytesSent();

    // Lazy, not a download: the layer is a remote (FUSE) snapshot and never entered the content store.
    const snapshots = await node.snapshots();
    assert.equal(snapshots.size, 1, 'one committed layer snapshot');
    const [layer] = [...snapshots.values()];
    assert.ok(layer && 'containerd.io/snapshot/remote' in layer.labels, `the layer is a remote snapshot: ${JSON.stringify(layer?.labels)}`);
    const manifestDigest = (await node.containerd.images())[0]?.digest ?? '';
    const manifest = JSON.parse((await node.containerd.ctr(['content', 'get', manifestDigest])).stdout) as {
      layers: { digest: string; size: number; annotations?: Record<string, string> }[];
    };
    const [blob] = manifest.layers;
    assert.ok(blob?.annotations?.['containerd.io/snapshot/stargz/toc.digest'], 'the layer is eStargz (it carries a TOC digest)');
    assert.ok(!(await node.containerd.content()).includes(blob.digest), 'the layer blob was not downloaded into the content store');

    const read = await node.withRootfs(async (rootfs) => ({
      note: await readFile(path.join(rootfs, 'etc/berth/note.txt')),
      blob3: sha256(await readFile(path.join(rootfs, 'data/blob-3.bin'))),
    }));
    assert.deepEqual(read.note, note, 'the small file reads byte-exact');
    assert.equal(read.blob3, sha256(files['data/blob-3.bin'] ?? Buffer.alloc(0)), 'a 2 MiB file reads byte-exact');

    const afterRead = await central.bytesSent();
    const gets = (await central.requests()).slice(requestsBefore).filter((r) => r.method === 'GET' && r.uri.includes(blob.digest));
    const layerGets = gets.length;
    const rangeGets = gets.filter((r) => r.status === 206).length;
    return { rpullMs, startBytes: afterPull - before, readBytes: afterRead - afterPull, layer: { digest: blob.digest, size: blob.size }, layerGets, rangeGets };
  } finally {
    await node.stop();
  }
}

const describeRun = (name: string, r: LazyStart): string =>
  `${name}: rpull ${r.rpullMs} ms; the central registry sent ${r.startBytes} bytes for the start and ${r.readBytes} for reading 2 MiB of files, of a ${r.layer.size}-byte eStargz layer (${r.layerGets} layer GETs, ${r.rangeGets} of them ranges)`;

test('lazy pulls of an eStargz image: straight from the registry, through a cold berth, through a warm berth', { skip, timeout: 600_000 }, async (t) => {
  // The snapshotter itself, with nothing between it and the registry: only what is read crosses.
  const direct = await lazyStart(central.url);
  t.diagnostic(describeRun('straight from the registry', direct));
  assert.ok(direct.startBytes + direct.readBytes < direct.layer.size / 2, 'straight from the registry the pull is lazy');

  const coldBefore = await central.bytesSent();
  const cold = await lazyStart(berth.url);
  t.diagnostic(describeRun('through a cold berth', cold));
  // The snapshotter's ranges reach the central registry as ranges (docs/design.md §14), those over
  // 1 MiB too (in pieces): the start and the reads do not wait for the whole layer, nor bring it.
  const sent = cold.startBytes + cold.readBytes;
  assert.ok(sent > 0, 'berth was cold: the central registry sent something');
  assert.ok(cold.rangeGets >= 1, `a range of the cold layer was asked of the central registry as a range (${cold.layerGets} layer GETs, none 206)`);
  // The fill is held back (rangequiet): the start and the reads cost what they cost straight from
  // the registry, give or take the headers of berth's requests (a HEAD, pieces of at most 1 MiB).
  const directSent = direct.startBytes + direct.readBytes;
  assert.ok(
    sent <= directSent * 1.05 + 64 * 1024,
    `the lazy start and reads through a cold berth: ${sent} bytes over the link, ${directSent} straight from the registry`,
  );
  // A client asking for the whole layer starts the fill at once; it fetches only what the reads did not keep.
  const whole = await request(`${berth.url}/v2/${REPO}/blobs/${cold.layer.digest}`);
  assert.equal(whole.statusCode, 200);
  const hash = createHash('sha256');
  for await (const chunk of whole.body) hash.update(chunk as Buffer);
  assert.equal(`sha256:${hash.digest('hex')}`, cold.layer.digest, 'the whole layer through berth is the layer');
  await waitFor(async () => (await berth.logLines()).some((l) => l['msg'] === 'blob fill complete' && l['digest'] === cold.layer.digest), 60_000, {
    what: 'the fill of the layer to complete',
  });
  const total = (await central.bytesSent()) - coldBefore;
  t.diagnostic(`through a cold berth, the layer filled after the reads: ${total} bytes over the link in all`);
  assert.ok(total <= cold.layer.size * 1.05 + 64 * 1024, `fetch-once: ${total} bytes for a ${cold.layer.size}-byte layer`);

  const warm = await lazyStart(berth.url);
  t.diagnostic(describeRun('through a warm berth', warm));
  assert.equal(warm.layerGets, 0, 'a warm berth serves the layer from disk');
});
