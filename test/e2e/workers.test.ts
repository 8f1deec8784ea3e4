/** @module e2e/workers.test — berth with http.workers: 2 in front of the real registry: one upstream copy across workers, a killed worker's fills taken over, metrics of the whole group, SIGTERM drains, TLS sessions shared. */
/** @serial a throttled link's bytes are counted while a worker is killed; needs the machine to itself. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import tls from 'node:tls';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { startRelay, type Relay } from '../fixtures/relay.js';
import { makeTempDir, removeDir, run, sleep, waitFor } from '../fixtures/proc.js';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { httpPull } from '../fixtures/http-pull.js';
import { memoryGroup } from '../fixtures/cgroup.js';
import { createCa, issueCertificate } from '../../src/cli/certs.js';
import { SINGLE_PROCESS_CORES } from '../../src/workers/worker-count.js';
import { availableParallelism } from 'node:os';

let registry: Registry;
const images: BuiltImage[] = [];
const report: string[] = [];

before(async () => {
  registry = await startRegistry({ auth: 'none' });
});

after(async () => {
  await registry?.stop();
  await Promise.all(images.map((i) => i.remove()));
  if (report.length) console.log(`workers measurements:\n${report.join('\n')}`);
});

async function image(repoTag: string, layers: number, layerSize: number): Promise<BuiltImage> {
  const img = await buildImage({ layers, layerSize, tag: 'v1' });
  images.push(img);
  await pushImage(img, registry.url, repoTag);
  return img;
}

async function workersBerth(remoteurl: string, extra: Record<string, unknown> = {}): Promise<Berth> {
  const b = await startBerth({ config: { version: 0.1, log: { level: 'info' }, http: { workers: 2 }, proxy: { remoteurl, tagttl: '10m' }, ...extra } });
  // Connections are dealt out only to workers that listen: berth answers once one does, and the tests here need both.
  await waitFor(async () => (await b.logLines()).some((l) => l['msg'] === 'every worker is listening'), 30_000, { what: 'both workers listening' });
  return b;
}

async function sent(fn: () => Promise<unknown>): Promise<number> {
  const before = await registry.bytesSent();
  await fn();
  // distribution logs a request after its response: give the log a moment.
  await sleep(300);
  return (await registry.bytesSent()) - before;
}

/** Worker slot -> pids it had, from the primary's log. */
async function workerPids(b: Berth): Promise<Map<number, number[]>> {
  const pids = new Map<number, number[]>();
  for (const l of await b.logLines()) {
    if (l['msg'] !== 'worker started') continue;
    const slot = Number(l['worker']);
    pids.set(slot, [...(pids.get(slot) ?? []), Number(l['pid'])]);
  }
  return pids;
}

/** A pull that moves on to a new connection when the worker serving it dies (as a node retries). */
async function pullUntilDone(b: Berth, repository: string, img: BuiltImage, tries = 6): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      const r = await httpPull(b.url, repository, 'v1');
      assert.equal(r.manifestDigest, img.manifestDigest);
      return;
    } catch (err) {
      if (i >= tries) throw err;
      await sleep(200);
    }
  }
}

/** GET on a connection of its own, so requests spread over the workers (connections are dealt out, not requests). */
function getFresh(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

test('30 concurrent cold pulls through 2 workers cost the registry one copy; both workers served', async () => {
  const img = await image('workers/app:v1', 4, 3 * 1024 * 1024);
  const b = await workersBerth(registry.url);
  try {
    const cold = await sent(() => Promise.all(Array.from({ length: 30 }, () => pullUntilDone(b, 'workers/app', img, 1))));
    const ratio = cold / img.totalSize;
    report.push(`cold, 30 pulls over 2 workers: registry bytes ${cold} / image ${img.totalSize} = ${ratio.toFixed(3)}x`);
    assert.ok(ratio <= 1.05, `registry sent ${ratio.toFixed(3)}x the image`);
    const served = new Set((await b.logLines()).filter((l) => l['msg'] === 'request' && String(l['path']).includes('/blobs/')).map((l) => l['worker']));
    assert.deepEqual([...served].sort(), [0, 1], 'blob requests reached both workers');
    const warm = await sent(() => Promise.all(Array.from({ length: 4 }, () => pullUntilDone(b, 'workers/app', img, 1))));
    assert.equal(warm, 0);
  } finally {
    await b.stop();
  }
});

/** Bytes the processes caused to be written to storage (/proc/<pid>/io write_bytes, counted when pages are dirtied). */
async function diskWrites(pids: number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += Number(/^write_bytes: (\d+)$/m.exec(await readFile(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  return total;
}

test('a cold blob both workers serve while it fills is written to disk once: the following worker shares the filling worker file', async () => {
  // The primary deals each connection to a worker that is free; a loaded machine can keep one busy
  // for a whole pull, so a round where one worker served everything is run again with a new image.
  for (let round = 1; ; round++) {
    const img = await image(`workers/once${round}:v1`, 1, 12 * 1024 * 1024);
    // Slow enough that both workers get requests for the layer while it fills.
    const relay: Relay = await startRelay({ targetPort: registry.port, rateBytesPerSec: 8 * 1024 * 1024 });
    const b = await workersBerth(relay.url);
    try {
      const pids = [b.service.pid, ...[...(await workerPids(b)).values()].flat()];
      const before = await diskWrites(pids);
      await Promise.all(Array.from({ length: 12 }, () => pullUntilDone(b, `workers/once${round}`, img, 1)));
      const written = (await diskWrites(pids)) - before;
      const layer = img.layers[0]!;
      const served = new Set((await b.logLines()).filter((l) => l['msg'] === 'request' && String(l['path']).endsWith(layer.digest)).map((l) => l['worker']));
      if (served.size < 2 && round < 4) continue;
      assert.deepEqual([...served].sort(), [0, 1], `both workers served the layer (round ${round})`);
      report.push(`cold layer ${layer.size} bytes through 2 workers: ${written} bytes written to disk`);
      // One copy of the layer plus the databases; a copy per worker would be twice the layer.
      assert.ok(written < layer.size * 1.5, `${written} bytes written for a layer of ${layer.size}`);
      return;
    } finally {
      await b.stop();
      await relay.stop();
    }
  }
});

test('the filling worker SIGKILLed mid-fill behind a throttled link: it is replaced, the other resumes, every pull verified, link <= 1.25x', async () => {
  const img = await image('workers/killed:v1', 1, 8 * 1024 * 1024);
  const relay: Relay = await startRelay({ targetPort: registry.port, rateBytesPerSec: 3 * 1024 * 1024 });
  const b = await workersBerth(relay.url);
  try {
    const layer = img.layers[0]!.digest;
    const pulls = Promise.all(Array.from({ length: 30 }, () => pullUntilDone(b, 'workers/killed', img)));
    // Once about a third of the layer crossed the link, kill the worker filling it.
    while (relay.bytesToClient() < img.totalSize / 3) await sleep(50);
    const filling = (await b.logLines()).find((l) => l['msg'] === 'filling this blob for every worker' && l['digest'] === layer);
    assert.ok(filling, 'a worker logged that it fills the layer');
    const slot = Number(filling['worker']);
    const pid = (await workerPids(b)).get(slot)![0]!;
    process.kill(pid, 'SIGKILL');
    await pulls;
    const ratio = relay.bytesToClient() / img.totalSize;
    report.push(
      `filling worker SIGKILLed mid-fill behind a 3 MiB/s link, 30 pulls: link bytes ${relay.bytesToClient()} / image ${img.totalSize} = ${ratio.toFixed(3)}x`,
    );
    assert.ok(ratio <= 1.25, `${ratio.toFixed(3)}x`);
    const lines = await b.logLines();
    assert.ok(lines.some((l) => String(l['msg']).startsWith('worker died; starting a replacement') && Number(l['worker']) === slot));
    assert.ok(lines.some((l) => l['msg'] === 'the worker filling this blob stopped; fetching the rest here' && l['digest'] === layer));
    assert.equal((await workerPids(b)).get(slot)!.length, 2, 'the slot got a new worker');
    const again = await sent(() => pullUntilDone(b, 'workers/killed', img, 1));
    assert.equal(again, 0, 'the blob was stored once taken over');
  } finally {
    await b.stop();
    await relay.stop();
  }
});

/** Sum of one metric's samples whose labels include every given label. */
function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[4]);
  }
  return total;
}

test('/metrics and /api/v1/stats add up every worker; the store is counted once', async () => {
  const img = await image('workers/metrics:v1', 2, 256 * 1024);
  const b = await workersBerth(registry.url);
  try {
    await pullUntilDone(b, 'workers/metrics', img, 1);
    const n = 20;
    const digest = img.layers[0]!.digest;
    for (let i = 0; i < n; i++) {
      const r = await getFresh(`${b.url}/v2/workers/metrics/blobs/${digest}`);
      assert.equal(r.status, 200);
      assert.equal(`sha256:${createHash('sha256').update(r.body).digest('hex')}`, digest);
    }
    const served = new Set(
      (await b.logLines()).filter((l) => l['msg'] === 'request' && l['path'] === `/v2/workers/metrics/blobs/${digest}`).map((l) => l['worker']),
    );
    assert.deepEqual([...served].sort(), [0, 1], 'the requests reached both workers');
    // Asked on fresh connections too: whichever worker answers reports the whole group.
    for (let i = 0; i < 4; i++) {
      const text = (await getFresh(`${b.url}/metrics`)).body.toString();
      const blobs = metricSum(text, 'berth_http_requests_total', { route: 'blob', method: 'GET', status: '200' });
      assert.equal(blobs, n + img.layers.length + 1, `blob GETs counted across workers (${blobs})`);
      const store = metricSum(text, 'berth_store_bytes');
      assert.ok(store >= img.totalSize - 4096 && store < img.totalSize * 1.5, `store bytes reported once: ${store} for an image of ${img.totalSize}`);
      const stats = JSON.parse((await getFresh(`${b.url}/api/v1/stats`)).body.toString()) as {
        requests: { hit: number; miss: number };
        store: { bytes: number };
      };
      assert.equal(stats.requests.hit + stats.requests.miss, n + img.layers.length + 2, 'stats add every worker up (manifest, config, layers, then the hits)');
      assert.equal(stats.store.bytes, store);
    }
  } finally {
    await b.stop();
  }
});

test('SIGTERM drains every worker: a transfer in flight completes, then the primary and the workers exit 0', async () => {
  const img = await image('workers/drain:v1', 1, 6 * 1024 * 1024);
  const relay: Relay = await startRelay({ targetPort: registry.port, rateBytesPerSec: 2 * 1024 * 1024 });
  const b = await workersBerth(relay.url);
  try {
    const pulls = Promise.all(Array.from({ length: 6 }, () => httpPull(b.url, 'workers/drain', 'v1')));
    while (relay.bytesToClient() < img.totalSize / 4) await sleep(50);
    const pids = [...(await workerPids(b)).values()].flat();
    assert.equal(pids.length, 2);
    const stopped = b.kill('SIGTERM');
    const pulled = await pulls;
    await stopped;
    for (const r of pulled) assert.equal(r.manifestDigest, img.manifestDigest);
    const exit = await b.service.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), 'worker exited');
    const lines = await b.logLines();
    assert.equal(lines.filter((l) => l['msg'] === 'stopped').length, 2, 'each worker drained and stopped');
  } finally {
    await b.stop();
    await relay.stop();
  }
});

test('TLS sessions resume on either worker: a node reconnecting skips the full handshake whichever worker it reaches', async () => {
  const dir = await makeTempDir('berth-workers-tls-');
  const ca = createCa('workers test CA', 2);
  const pair = issueCertificate(ca, { hosts: ['localhost'], ips: ['127.0.0.1'], usage: 'server', days: 2 });
  await writeFile(path.join(dir, 'tls.crt'), pair.cert);
  await writeFile(path.join(dir, 'tls.key'), pair.key);
  const b = await workersBerth(registry.url, { http: { workers: 2, tls: { certificate: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') } } });
  try {
    const { port } = new URL(b.url);
    let session = (await handshake(Number(port), ca.cert)).session;
    const resumed: boolean[] = [];
    const servedBy = async () => new Set((await b.logLines()).filter((l) => l['msg'] === 'request').map((l) => l['worker']));
    // The primary deals connections to the workers in turn; a worker still starting misses its turn,
    // so reconnect (at most 32 times) until both have answered, at least eight times in all.
    for (let i = 0; i < 32 && (i < 8 || (await servedBy()).size < 2); i++) {
      const r = await handshake(Number(port), ca.cert, session);
      resumed.push(r.reused);
      session = r.session ?? session;
    }
    assert.deepEqual([...(await servedBy())].sort(), [0, 1], 'both workers answered');
    assert.ok(resumed.every(Boolean), `every connection resumed the first session: ${resumed.join()}`);
  } finally {
    await b.stop();
    await removeDir(dir);
  }
});

/** One TLS connection to /v2/, offering `session`: whether the server resumed it, and the ticket it gave. */
function handshake(port: number, ca: string, session?: Buffer): Promise<{ reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    let ticket: Buffer | undefined;
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ...(session ? { session } : {}) }, () => {
      socket.write('GET /v2/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    // TLS 1.3 sends its tickets after the handshake: read the answer to the end to have them.
    socket.on('session', (s: Buffer) => (ticket = s));
    socket.on('data', () => undefined);
    socket.on('end', () => resolve({ reused: socket.isSessionReused(), session: ticket }));
    socket.on('error', reject);
  });
}

test('SIGHUP to the primary reaches every worker: each re-reads the htpasswd file', async () => {
  const dir = await makeTempDir('berth-workers-auth-');
  const htpasswd = path.join(dir, 'htpasswd');
  await writeFile(htpasswd, `${(await run('htpasswd', ['-Bbn', 'ci', 'ci-pw'])).stdout.trim()}\n`);
  const b = await workersBerth(registry.url, { auth: { htpasswd: { realm: 'berth', path: htpasswd } } });
  try {
    // Both workers serving first (a worker still starting reads the files anyway).
    const serving = async () => new Set((await b.logLines()).filter((l) => l['msg'] === 'request').map((l) => l['worker'])).size === 2;
    await waitFor(async () => (await getFresh(`${b.url}/v2/`)) && (await serving()), 10_000, { what: 'both workers to serve' });
    b.service.kill('SIGHUP');
    const reloaded = async () => new Set((await b.logLines()).filter((l) => l['msg'] === 'htpasswd reloaded').map((l) => l['worker']));
    await waitFor(async () => (await reloaded()).size === 2, 10_000, { what: 'both workers to reload' });
    assert.deepEqual([...(await reloaded())].sort(), [0, 1]);
    assert.equal((await getFresh(`${b.url}/v2/`)).status, 401, 'still serving, auth still on');
  } finally {
    await b.stop();
    await removeDir(dir);
  }
});

test('http.workers auto keeps within the container: under a 600 MiB memory limit it serves from one process, and says why', async () => {
  const img = await image('workers/limited:v1', 1, 256 * 1024);
  const group = await memoryGroup(`berth-test-${process.pid}`, 600 * 1024 * 1024);
  try {
    const b = await startBerth({
      config: { version: 0.1, log: { level: 'info' }, http: { workers: 'auto' }, proxy: { remoteurl: registry.url } },
      cgroupProcs: group.procs,
    });
    try {
      const pulled = await httpPull(b.url, 'workers/limited', 'v1');
      assert.equal(pulled.manifestDigest, img.manifestDigest);
      const lines = await b.logLines();
      // On two cores or fewer `auto` is one process anyway, and the log says that instead.
      const why =
        availableParallelism() <= SINGLE_PROCESS_CORES
          ? /^http\.workers: auto → 1 process: \d+ cores; a second worker does not pay here/
          : /^http\.workers auto: 1 of \d+ cores, held by the container's memory limit$/;
      assert.ok(
        lines.some((l) => why.test(String(l['msg']))),
        'the start-up log names the limit',
      );
      assert.ok(!lines.some((l) => l['msg'] === 'worker started'), 'no workers: one process serves');
    } finally {
      await b.stop();
    }
  } finally {
    await group.remove();
  }
});
