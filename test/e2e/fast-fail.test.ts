/** @module e2e/fast-fail.test — a WAN link cut so connects time out: the first uncached pull waits out the connect timeout, the next ones hear 503 at once, cached tags still pull, and pulls work again once a probe finds the link back. */
/** @serial compares how long a pull waits with the link cut. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { request } from 'undici';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth } from '../fixtures/berth.js';
import { skopeoPull } from '../fixtures/clients.js';
import { startRelay, type Relay } from '../fixtures/relay.js';
import { startDarkPort } from '../fixtures/dark-port.js';
import { freePort, makeTempDir, removeDir, sleep, waitFor } from '../fixtures/proc.js';
import { ACCEPT_ALL, httpPull } from '../fixtures/http-pull.js';

let registry: Registry;
let work: string;
const images: BuiltImage[] = [];

before(async () => {
  work = await makeTempDir('berth-e2e-fastfail-');
  registry = await startRegistry();
});

after(async () => {
  await registry?.stop();
  await Promise.all(images.map((i) => i.remove()));
  await removeDir(work);
});

/** One uncached manifest GET: status, the error message, and how long berth took to answer. */
async function timedGet(url: string): Promise<{ status: number; message: string; ms: number }> {
  const started = performance.now();
  const res = await request(url, { headers: { accept: ACCEPT_ALL } });
  const text = await res.body.text();
  const ms = performance.now() - started;
  const message = res.statusCode >= 400 ? ((JSON.parse(text) as { errors: Array<{ message: string }> }).errors[0]?.message ?? '') : '';
  return { status: res.statusCode, message, ms };
}

test('link cut (connects time out): one slow 503, then 503 at once naming the cause; cached tags pull; back after the probe', () => cutLink('1'));

test('the same with two serving workers: the one that saw the outage tells the other', () => cutLink('2'));

async function cutLink(workers: string): Promise<void> {
  const cached = await buildImage({ layers: 1, layerSize: 256 * 1024, tag: 'v1' });
  const cold = await buildImage({ layers: 1, layerSize: 256 * 1024, tag: 'v1' });
  images.push(cached, cold);
  await pushImage(cached, registry.url, `fast${workers}/cached:v1`);
  await pushImage(cold, registry.url, `fast${workers}/cold:v1`);
  const linkPort = await freePort();
  let relay: Relay | undefined = await startRelay({ targetPort: registry.port, port: linkPort });
  const berth = await startBerth({ env: { REGISTRY_HTTP_WORKERS: workers }, proxy: { remoteurl: relay.url, tagttl: '1s' } });
  let dark: Awaited<ReturnType<typeof startDarkPort>> | undefined;
  try {
    await httpPull(berth.url, `fast${workers}/cached`, 'v1');

    // Cut: the address berth knows now drops every SYN, as a dead WAN link does.
    await relay.stop();
    relay = undefined;
    dark = await startDarkPort(linkPort);
    await sleep(1_200); // past tagttl, so the cached tag is asked upstream too

    const first = await timedGet(`${berth.url}/v2/fast${workers}/cold/manifests/v1`);
    process.stdout.write(`# workers ${workers}: first uncached pull with the link cut: ${first.status} after ${Math.round(first.ms)} ms: ${first.message}\n`);
    assert.equal(first.status, 503);
    assert.match(first.message, /unreachable/);
    assert.ok(first.ms < 30_000, `the first failure stays within the connect timeout (${Math.round(first.ms)} ms)`);

    const next: number[] = [];
    for (const ref of ['v1', 'v2', 'latest', cold.manifestDigest, 'v1']) {
      const r = await timedGet(`${berth.url}/v2/fast${workers}/cold/manifests/${ref}`);
      next.push(Math.round(r.ms));
      assert.equal(r.status, 503, ref);
      assert.match(r.message, /unreachable .*UND_ERR_CONNECT_TIMEOUT/, r.message);
      assert.match(r.message, /probing every \d+s/);
    }
    process.stdout.write(`# workers ${workers}: next uncached pulls with the link cut (ms each): ${next.join(', ')}\n`);
    for (const ms of next) assert.ok(ms < 500, `503 at once, not after the connect timeout: ${next.join(', ')} ms`);

    // A real client hears it at once too, with the cause.
    const started = performance.now();
    const skopeo = await skopeoPull(`${berth.host}/fast${workers}/cold:v1`, path.join(work, `cold-cut-${workers}`), { timeoutMs: 60_000 }).then(
      () => '',
      (err: Error) => err.message,
    );
    const skopeoMs = Math.round(performance.now() - started);
    process.stdout.write(`# workers ${workers}: skopeo copy of an uncached image with the link cut: failed after ${skopeoMs} ms\n`);
    assert.match(skopeo, /unreachable/, skopeo);
    assert.ok(skopeoMs < 5_000, `skopeo fails at once (${skopeoMs} ms)`);

    // Stale-if-error: the cached tag still pulls.
    assert.equal((await httpPull(berth.url, `fast${workers}/cached`, 'v1')).manifestDigest, cached.manifestDigest);

    // The link comes back at the same address: a background probe finds it, uncached pulls work again.
    await dark.stop();
    dark = undefined;
    relay = await startRelay({ targetPort: registry.port, port: linkPort });
    const back = performance.now();
    await waitFor(async () => (await timedGet(`${berth.url}/v2/fast${workers}/cold/manifests/v1`)).status === 200, 60_000, {
      what: 'uncached pulls after the link is back',
      intervalMs: 250,
    });
    process.stdout.write(`# workers ${workers}: uncached pulls work again ${Math.round(performance.now() - back)} ms after the link came back\n`);
    assert.equal((await httpPull(berth.url, `fast${workers}/cold`, 'v1')).manifestDigest, cold.manifestDigest);
  } finally {
    await berth.stop();
    await dark?.stop();
    await relay?.stop();
  }
}
