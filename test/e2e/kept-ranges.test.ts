/** @module e2e/kept-ranges.test — bytes fetched for ranges of a cold blob are kept: a lazy start then the whole blob crosses the link about once (counted at the link to Debian's docker-registry), kept ranges survive a crash and restart, a stop during the background fill ends at once, a kept byte that is wrong fails the digest check and discards every kept range, and kept ranges nobody finishes count toward storage.maxsize (evicted least recently used first) and go after keptranges.age. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { rangeAnswers } from '../fixtures/ranged.js';
import { startRelay, type Relay } from '../fixtures/relay.js';
import { waitFor } from '../fixtures/proc.js';

const MiB = 1 << 20;
let registry: Registry;
let image: BuiltImage;
let layer: Buffer;
let digest: string;
let relay: Relay;
/** Pulled after the kept ranges, to take the store over maxsize. */
let other: BuiltImage;

before(async () => {
  registry = await startRegistry();
  image = await buildImage({ layers: 1, layerSize: 12 * MiB, tag: 'v1' });
  await pushImage(image, registry.url, 'xing/kept:v1');
  other = await buildImage({ layers: 1, layerSize: 2 * MiB, tag: 'v1' });
  await pushImage(other, registry.url, 'xing/other:v1');
  digest = image.layers[0]!.digest;
  layer = await readFile(path.join(image.dir, 'blobs', 'sha256', digest.slice(7)));
  // The WAN link: slow enough that the fill is still under way while a client's first ranges are answered.
  relay = await startRelay({ targetPort: registry.port, rateBytesPerSec: 3 * MiB });
});

after(async () => {
  await relay?.stop();
  await registry?.stop();
  await image?.remove();
  await other?.remove();
});

const coldBerth = (root?: string, storage?: Record<string, unknown>) =>
  startBerth({ config: { version: 0.1, proxy: { remoteurl: relay.url }, ...(storage ? { storage } : {}) }, ...(root ? { root } : {}) });
const blobUrl = (b: Berth) => `${b.url}/v2/xing/kept/blobs/${digest}`;
const keptPaths = (b: Berth) => {
  const base = path.join(b.root, 'partial', 'sha256', digest.slice(7));
  return { file: base, map: `${base}.ranges` };
};

/** Bytes [start, end] through berth, checked exactly. */
async function range(b: Berth, start: number, end: number): Promise<void> {
  const res = await fetch(blobUrl(b), { headers: { range: `bytes=${start}-${end}` } });
  assert.equal(res.status, 206);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(layer.subarray(start, end + 1)), `bytes ${start}-${end} exact`);
}

async function whole(b: Berth): Promise<Buffer> {
  const res = await fetch(blobUrl(b));
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

const gone = (file: string) =>
  stat(file).then(
    () => false,
    () => true,
  );
const logged = async (b: Berth, msg: string) => (await b.logLines()).some((l) => l.msg === msg && l.digest === digest);
const filled = (b: Berth) => logged(b, 'blob fill complete');

/** The registry's 206 answers for the layer so far. */
const rangeAnswerCount = async (): Promise<number> => (await rangeAnswers(registry, digest)).length;

/** A lazy start: the footer, then scattered 1 MiB chunks well ahead of where the fill is. */
async function lazyStart(b: Berth): Promise<void> {
  await range(b, layer.length - 65536, layer.length - 1);
  await Promise.all([8, 9.25, 10.5].map((m) => range(b, m * MiB, (m + 1) * MiB - 1)));
}

test('a lazy start then the whole blob: the link carries the blob about once (<= 1.05x), not once plus the ranges', async (t) => {
  const b = await coldBerth();
  try {
    const wanBefore = relay.bytesToClient();
    const rangesBefore = await rangeAnswerCount();
    await lazyStart(b);
    assert.ok((await rangeAnswerCount()) - rangesBefore >= 3, 'footer and ranges were asked of the registry, not read from the fill');
    assert.ok((await whole(b)).equals(layer), 'whole blob exact');
    await waitFor(() => filled(b), 60_000, { what: 'the fill to complete' });
    const ratio = (relay.bytesToClient() - wanBefore) / layer.length;
    t.diagnostic(`WAN bytes / blob: ${ratio.toFixed(4)}`);
    assert.ok(ratio <= 1.05, `WAN bytes ${ratio.toFixed(3)}x the blob (3 MiB of ranges would make ~1.25x if fetched twice)`);
    // The kept ranges are removed once the blob is stored.
    await waitFor(() => gone(keptPaths(b).map), 10_000, { what: 'the kept map to be removed' });
    assert.ok(await gone(keptPaths(b).file));
  } finally {
    await b.stop();
  }
});

/** A lazy start on a cold berth, then a crash (SIGKILL): returns the root and the bytes kept there. */
async function lazyStartThenCrash(): Promise<{ root: string; kept: number; first: Berth }> {
  const first = await coldBerth();
  await lazyStart(first);
  await first.kill('SIGKILL');
  const map = JSON.parse(await readFile(keptPaths(first).map, 'utf8')) as { size: number; ranges: Array<[number, number]> };
  assert.equal(map.size, layer.length);
  const kept = map.ranges.reduce((n, [s, e]) => n + e - s, 0);
  assert.ok(kept > MiB, `kept ${kept} bytes across the crash`);
  return { root: first.root, kept, first };
}

test('kept ranges survive a crash: after the restart the fill fetches only what is missing', async (t) => {
  const { root, kept, first } = await lazyStartThenCrash();
  const b = await coldBerth(root);
  try {
    const wanBefore = relay.bytesToClient();
    assert.ok((await whole(b)).equals(layer), 'whole blob exact');
    await waitFor(() => filled(b), 60_000, { what: 'the fill to complete' });
    const wan = relay.bytesToClient() - wanBefore;
    t.diagnostic(`after the restart: ${wan} WAN bytes, ${layer.length - kept} missing`);
    // Each cut gap may carry what was in flight on the socket; 256 KiB covers it.
    assert.ok(wan <= layer.length - kept + 256 * 1024, `WAN ${wan} bytes after the restart; ${layer.length - kept} were missing`);
    await waitFor(() => gone(keptPaths(b).map), 10_000, { what: 'the kept map to be removed' });
  } finally {
    await b.stop();
    await first.cleanup();
  }
});

test('SIGTERM while the background fill runs: berth exits 0 at once, not retrying against its own closed upstream client, and the restart finishes the blob', async () => {
  const first = await coldBerth();
  const wanBefore = relay.bytesToClient();
  await range(first, layer.length - 65536, layer.length - 1);
  // The fill the footer started (after a second of quiet) is under way: bytes beyond the footer cross.
  await waitFor(async () => relay.bytesToClient() - wanBefore > 2 * MiB, 30_000, { what: 'the background fill to run' });
  const termAt = Date.now();
  first.service.kill('SIGTERM');
  const exit = await first.service.exited;
  const lines = await first.logLines();
  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
  const retries = lines.filter((l) => l.msg === 'upstream transfer interrupted; resuming' && Date.parse(String(l.time)) >= termAt);
  assert.deepEqual(retries, [], 'no resume attempts after the stop began');
  const b = await coldBerth(first.root);
  try {
    assert.ok((await whole(b)).equals(layer), 'whole blob exact after the restart');
  } finally {
    await b.stop();
    await first.cleanup();
  }
});

test('a wrong kept byte: the digest check fails, every kept range is discarded, and the next request fetches the blob whole and right', async () => {
  const { root, first } = await lazyStartThenCrash();
  // One bit flipped in the kept footer, as a bad disk would.
  const file = keptPaths(first).file;
  const bytes = await readFile(file);
  bytes[layer.length - 100] = bytes[layer.length - 100]! ^ 0x01;
  await writeFile(file, bytes);
  const b = await coldBerth(root);
  try {
    const res = await fetch(blobUrl(b));
    // The whole blob is never completed unverified: the answer is cut short.
    await assert.rejects(res.arrayBuffer());
    await waitFor(() => logged(b, 'blob failed its digest check; its kept ranges are discarded'), 60_000, { what: 'the digest failure' });
    await assert.rejects(stat(keptPaths(b).map), { code: 'ENOENT' });
    await assert.rejects(stat(keptPaths(b).file), { code: 'ENOENT' });
    assert.ok((await whole(b)).equals(layer), 'fetched again, whole and exact');
  } finally {
    await b.stop();
    await first.cleanup();
  }
});

/** Bytes the kept file takes on disk (0 when gone). */
const keptOnDisk = (file: string) =>
  stat(file).then(
    (s) => s.blocks * 512,
    () => 0,
  );

test('kept ranges nobody finishes count toward storage.maxsize: pulling past it evicts them first (least recently used) and their bytes leave the disk', async (t) => {
  const { root, kept, first } = await lazyStartThenCrash();
  const before = await keptOnDisk(keptPaths(first).file);
  assert.ok(before >= kept, `kept file takes ${before} bytes on disk`);
  // The kept bytes (about 3 MiB) fit; with the other image's 2 MiB the store is over 4 MiB.
  const b = await coldBerth(root, { maxsize: '4MiB', lowwatermark: 0.9 });
  try {
    assert.equal(await keptOnDisk(keptPaths(b).file), before, 'under maxsize, the kept ranges stay');
    const res = await fetch(`${b.url}/v2/xing/other/manifests/v1`, { headers: { accept: other.manifestMediaType } });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    for (const blob of other.blobs) {
      const r = await fetch(`${b.url}/v2/xing/other/blobs/${blob.digest}`);
      assert.equal(r.status, 200);
      assert.equal((await r.arrayBuffer()).byteLength, blob.size);
    }
    // The map goes first, then the file (a map never claims bytes the file does not hold): wait for both.
    await waitFor(async () => (await gone(keptPaths(b).map)) && (await gone(keptPaths(b).file)), 30_000, { what: 'the kept ranges to be evicted' });
    assert.equal(await keptOnDisk(keptPaths(b).file), 0, 'the kept bytes left the disk');
    // The eviction's line comes once its files are removed.
    await waitFor(async () => (await b.logLines()).some((l) => l.msg === 'evicted least recently used content'), 30_000, { what: 'the eviction logged' });
    const line = (await b.logLines()).find((l) => l.msg === 'evicted least recently used content');
    t.diagnostic(`eviction: ${JSON.stringify(line)}`);
    assert.equal(line?.['keptRanges'], 1);
    // What was pulled last stays: it is served from disk without the upstream.
    const stored = await stat(path.join(b.root, 'blobs', 'sha256', other.layers[0]!.digest.slice(7, 9), other.layers[0]!.digest.slice(7)));
    assert.equal(stored.size, other.layers[0]!.size);
  } finally {
    await b.stop();
    await first.cleanup();
  }
});

test('kept ranges unused for storage.maintenance.keptranges.age are removed', async () => {
  const { root, first } = await lazyStartThenCrash();
  const b = await coldBerth(root, { maintenance: { keptranges: { age: '2s' } } });
  try {
    await waitFor(() => gone(keptPaths(b).map), 30_000, { what: 'the aged kept ranges to be removed' });
    assert.equal(await keptOnDisk(keptPaths(b).file), 0);
    // The blob is fetched whole and right afterwards.
    assert.ok((await whole(b)).equals(layer));
  } finally {
    await b.stop();
    await first.cleanup();
  }
});
