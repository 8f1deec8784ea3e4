/** @module e2e/worker-ranges.test — berth with http.workers: 2 in front of Debian's docker-registry behind a slow link: concurrent overlapping ranges of a cold layer, served by both workers, cost the registry one fetch of those bytes; then the whole layer crosses the link about once. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { rangeBytes, rangedGet } from '../fixtures/ranged.js';
import { startRelay, type Relay } from '../fixtures/relay.js';
import { waitFor } from '../fixtures/proc.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** One cold layer per round: a round in which one worker got every connection is run again on the next. */
const ROUNDS = 4;
let registry: Registry;
let image: BuiltImage;
let relay: Relay;
let berth: Berth;

before(async () => {
  registry = await startRegistry();
  image = await buildImage({ layers: ROUNDS, layerSize: 4 * MiB, tag: 'v1' });
  await pushImage(image, registry.url, 'xing/wranges:v1');
  // Slow enough that the ranges' upstream fetches are still on their way when the later requests come.
  relay = await startRelay({ targetPort: registry.port, rateBytesPerSec: 2 * MiB });
  berth = await startBerth({ config: { version: 0.1, log: { level: 'info' }, http: { workers: 2 }, proxy: { remoteurl: relay.url } } });
  await waitFor(async () => (await berth.logLines()).some((l) => l['msg'] === 'every worker is listening'), 30_000, { what: 'both workers listening' });
});

after(async () => {
  await berth?.stop();
  await relay?.stop();
  await registry?.stop();
  await image?.remove();
});

test('8 concurrent overlapping ranges of a cold layer over 2 workers: the registry sends those bytes once; the whole layer then crosses the link about once', async (t) => {
  for (let round = 0; round < ROUNDS; round++) {
    const layer = image.layers[round]!;
    const bytes = await readFile(path.join(image.dir, 'blobs', 'sha256', layer.digest.slice(7)));
    const url = `${berth.url}/v2/xing/wranges/blobs/${layer.digest}`;
    // Eight 512 KiB ranges, each 48 KiB after the one before: together 848 KiB, each byte asked up to 8 times.
    const base = 2 * MiB;
    const spans = Array.from({ length: 8 }, (_, i) => [base + i * 48 * KiB, base + i * 48 * KiB + 512 * KiB - 1] as const);
    const union = spans.at(-1)![1] - base + 1;
    const linkBefore = relay.bytesToClient();
    const logBefore = (await berth.logLines()).length;
    const answers = await Promise.all(spans.map(([s, e]) => rangedGet(url, s, e)));
    answers.forEach((a, i) => {
      assert.equal(a.status, 206);
      assert.ok(a.body.equals(bytes.subarray(spans[i]![0], spans[i]![1] + 1)), `range ${i} byte-exact`);
    });
    // distribution logs a request after its response; the fill waits for the ranges to be quiet for a second.
    await sleep(300);
    const fetched = await rangeBytes(registry, layer.digest);
    const workers = new Set(
      (await berth.logLines())
        .slice(logBefore)
        .filter((l) => l['msg'] === 'request' && String(l['path']).includes(layer.digest))
        .map((l) => l['worker']),
    );
    t.diagnostic(`round ${round}: workers ${[...workers].join(',')}; registry sent ${fetched} bytes for ranges totalling ${union}`);
    if (workers.size < 2 && round < ROUNDS - 1) continue;
    assert.equal(workers.size, 2, 'the ranges reached both workers');
    assert.ok(fetched <= union * 1.05, `registry sent ${(fetched / union).toFixed(3)}x the bytes asked (each worker fetching its own would be about 2x)`);
    // The whole layer then, at once: its fill skips what the ranges brought, on whichever worker
    // fills it, spans the other worker is still syncing and recording included.
    const whole = await rangedGet(url, 0, layer.size - 1);
    assert.ok(whole.body.equals(bytes));
    await waitFor(async () => (await berth.logLines()).some((l) => l['msg'] === 'blob fill complete' && l['digest'] === layer.digest), 60_000, {
      what: 'the fill to complete',
    });
    const ratio = (relay.bytesToClient() - linkBefore) / layer.size;
    t.diagnostic(`round ${round}: ranges then the whole layer: ${ratio.toFixed(3)}x the layer over the link`);
    assert.ok(ratio <= 1.05, `${ratio.toFixed(3)}x the layer over the link`);
    return;
  }
});
