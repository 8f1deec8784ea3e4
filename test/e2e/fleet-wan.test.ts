/**
 * @module e2e/fleet-wan.test — the WAN budget: `ratelimit` measured at a relay on the link, a
 * node's pull going first during a warm-up, and `backgroundwindow` holding background work back.
 */
/** @serial measures a rate limit at a relay on the link. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { startRelay, type Relay } from '../fixtures/relay.js';
import { httpPull } from '../fixtures/http-pull.js';
import { api } from '../fixtures/admin.js';
import { sleep, waitFor } from '../fixtures/proc.js';

const MiB = 1 << 20;
const CAP = 2_000_000; // ratelimit: 2MB/s
let registry: Registry;
let relay: Relay;
let berth: Berth;
let big: BuiltImage;
let bigger: BuiltImage;
let small: BuiltImage;
/** Four one-layer images pulled at once, over connections the primary deals out to both workers. */
let spread: BuiltImage[] = [];
const measured: Record<string, unknown> = {};

before(async () => {
  registry = await startRegistry();
  [big, bigger, small] = await Promise.all([
    buildImage({ layers: 2, layerSize: 8 * MiB, tag: 'v1' }),
    buildImage({ layers: 3, layerSize: 8 * MiB, tag: 'v1' }),
    buildImage({ layers: 1, layerSize: 4 * MiB, tag: 'v1' }),
  ]);
  await pushImage(big, registry.url, 'wan/big:v1');
  await pushImage(bigger, registry.url, 'wan/bigger:v1');
  await pushImage(small, registry.url, 'wan/small:v1');
  spread = await Promise.all(Array.from({ length: 4 }, () => buildImage({ layers: 1, layerSize: 2 * MiB, tag: 'v1' })));
  await Promise.all(spread.map((img, i) => pushImage(img, registry.url, `wan/spread${i}:v1`)));
  relay = await startRelay({ targetPort: registry.port });
  // Two workers, whatever the machine: the cap is for the whole group, not for each.
  berth = await startBerth({ config: { version: 0.1, http: { workers: 2 }, proxy: { remoteurl: relay.url, ratelimit: '2MB/s' } } });
});

after(async () => {
  await berth?.stop();
  await relay?.stop();
  await registry?.stop();
  await Promise.all([big, bigger, small, ...spread].map((i) => i?.remove()));
  process.stdout.write(`# WAN budget measured: ${JSON.stringify(measured)}\n`);
});

interface Job {
  id: string;
  state: string;
  images: Array<{ bytesFetched: number; bytesTotal: number }>;
}
const startWarm = async (image: string): Promise<string> => {
  const r = await api(berth.url, 'POST', '/api/v1/warm', { images: [image] });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  return (r.json as Job).id;
};
const job = async (id: string): Promise<Job> => (await api(berth.url, 'GET', `/api/v1/warm/${id}`)).json as Job;

test('ratelimit: the link carries the warm-up at the cap (average within 10%)', async () => {
  const before = relay.bytesToClient();
  const samples: Array<{ t: number; bytes: number }> = [];
  const id = await startWarm(`${registry.host}/wan/big:v1`);
  const sampler = setInterval(() => samples.push({ t: Date.now(), bytes: relay.bytesToClient() - before }), 50);
  try {
    await waitFor(async () => (await job(id)).state !== 'running', 120_000, { what: 'the warm-up', intervalMs: 50 });
  } finally {
    clearInterval(sampler);
  }
  const done = Date.now();
  assert.equal((await job(id)).state, 'done');
  const first = samples.find((s) => s.bytes > 0)!;
  const total = relay.bytesToClient() - before;
  assert.ok(total >= big.totalSize - big.manifestBytes.length, `the link carried ${total} bytes`);
  // Bytes through the relay over the time the transfer took end to end. The relay's own send
  // times run ahead: on loopback the kernel grows socket buffers to many MB, which berth drains at the cap.
  const average = total / ((done - first.t) / 1000);
  const last = samples.find((s) => s.bytes >= total)!;
  measured['ratelimit 2MB/s: bytes over the link'] = total;
  measured['ratelimit 2MB/s: average at the relay, end to end, B/s'] = Math.round(average);
  measured['ratelimit 2MB/s: relay send-side rate (socket buffers filling), B/s'] = Math.round(total / ((last.t - first.t) / 1000));
  assert.ok(Math.abs(average - CAP) <= CAP * 0.1, `link average ${Math.round(average)} B/s is not within 10% of ${CAP}`);
});

test('ratelimit caps the whole group of workers: four pulls served by both workers at once share it', async () => {
  const before = relay.bytesToClient();
  const started = Date.now();
  const pulled = await Promise.all(spread.map((_, i) => httpPull(berth.url, `wan/spread${i}`, 'v1')));
  const seconds = (Date.now() - started) / 1000;
  pulled.forEach((p, i) => assert.equal(p.manifestDigest, spread[i]!.manifestDigest));
  const total = relay.bytesToClient() - before;
  const average = total / seconds;
  measured['ratelimit 2MB/s, 4 pulls over 2 workers: average at the relay, B/s'] = Math.round(average);
  // Each worker with a budget of its own would carry about twice the cap.
  assert.ok(average <= CAP * 1.15, `link average ${Math.round(average)} B/s over ${seconds.toFixed(1)} s is above the cap of ${CAP}`);
});

test('a node pull during a running warm-up goes first: it finishes while the warm-up is still running', async () => {
  const id = await startWarm(`${registry.host}/wan/bigger:v1`);
  await waitFor(async () => ((await job(id)).images[0]?.bytesFetched ?? 0) > 2 * MiB, 60_000, { what: 'the warm-up to be under way' });
  const started = Date.now();
  const pulled = await httpPull(berth.url, 'wan/small', 'v1');
  const pullMs = Date.now() - started;
  const during = await job(id);
  assert.equal(pulled.manifestDigest, small.manifestDigest);
  assert.equal(
    pulled.blobBytes,
    small.blobs.reduce((n, b) => n + b.size, 0),
  );
  assert.equal(during.state, 'running', 'the warm-up was still running when the node had its image');
  assert.ok(during.images[0]!.bytesFetched < during.images[0]!.bytesTotal);
  measured['node pull 4MiB during warm-up, ms'] = pullMs;
  measured['node pull alone at the cap would take, ms'] = Math.round((pulled.blobBytes / CAP) * 1000);
  await waitFor(async () => (await job(id)).state !== 'running', 120_000, { what: 'the warm-up to finish' });
  assert.equal((await job(id)).state, 'done');
});

test('backgroundwindow: outside the window warm-ups wait, node pulls do not', async () => {
  // A window that starts two hours from now (local time), so now is outside it.
  const d = new Date(Date.now() + 2 * 3_600_000);
  const hh = (h: number) => String(h % 24).padStart(2, '0');
  const window = `${hh(d.getHours())}:00-${hh(d.getHours() + 1)}:00`;
  const other = await startBerth({ config: { version: 0.1, proxy: { remoteurl: registry.url, backgroundwindow: window } } });
  try {
    const r = await api(other.url, 'POST', '/api/v1/warm', { images: [`${registry.host}/wan/big:v1`] });
    const id = (r.json as Job).id;
    await sleep(1_500);
    const pulled = await httpPull(other.url, 'wan/small', 'v1');
    assert.equal(pulled.manifestDigest, small.manifestDigest);
    const held = (await api(other.url, 'GET', `/api/v1/warm/${id}`)).json as Job;
    assert.equal(held.state, 'running');
    assert.equal(held.images[0]!.bytesFetched, 0, `nothing fetched outside ${window}`);
  } finally {
    await other.stop();
  }
});
