/** @module e2e/sendfile.test — stored blobs reach plain TCP clients by sendfile(2), verified by skopeo; TLS and `http.sendfile: false` copy; access log and metrics count the kernel's bytes. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { BERTH_BIN, startBerth, type Berth } from '../fixtures/berth.js';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { skopeoPull } from '../fixtures/clients.js';
import { sampleSum, scrape } from '../fixtures/admin.js';
import { freePort, makeTempDir, removeDir, run, waitFor } from '../fixtures/proc.js';

let work: string;
let registry: Registry;
let image: BuiltImage;
const started: Berth[] = [];

before(async () => {
  work = await makeTempDir('berth-e2e-sendfile-');
  registry = await startRegistry();
  image = await buildImage({ layers: 2, layerSize: 6 * 1024 * 1024, tag: 'v1' });
  await pushImage(image, registry.url, 'xing/app:v1');
});

after(async () => {
  for (const b of started) await b.stop();
  await registry?.stop();
  await image?.remove();
  await removeDir(work);
});

async function berthWith(http: Record<string, unknown>): Promise<Berth> {
  const b = await startBerth({ config: { version: 0.1, http, proxy: { remoteurl: registry.url } } });
  started.push(b);
  return b;
}

/** Two skopeo pulls: the first fills the cache, the second is served from disk; both re-hash every blob. */
async function pullTwice(b: Berth, host: string, opts: { certDir?: string } = {}): Promise<void> {
  for (const round of [1, 2]) {
    const pulled = await skopeoPull(`${host}/xing/app:v1`, path.join(work, `${b.port}-${round}`), { tlsVerify: opts.certDir !== undefined, ...opts });
    assert.equal(pulled.manifestDigest, image.manifestDigest);
    assert.deepEqual(pulled.blobs.map((x) => x.digest).sort(), image.blobs.map((x) => x.digest).sort());
  }
}

/** Which way stored blobs go is logged once at start (by the lead worker, whose lines may trail the ready signal). */
async function saysAtStart(b: Berth, words: string): Promise<void> {
  await waitFor(async () => (await b.logLines()).some((l) => String(l['msg']).includes(words)), 10_000, { what: `a start-up line saying "${words}"` });
}

const layerBytes = (): number => image.layers.reduce((n, l) => n + l.size, 0);

test('plain TCP: the warm pull goes by sendfile, and the access log counts those bytes', async () => {
  const b = await berthWith({});
  await saysAtStart(b, 'by sendfile(2)');
  await pullTwice(b, b.host);
  const metrics = await scrape(b.url);
  const kernel = sampleSum(metrics, 'berth_sendfile_bytes_total');
  // The cold pull streamed the fill; the warm one read the stored files: all but the small writes before each turn.
  assert.ok(kernel >= layerBytes() * 0.95 && kernel <= layerBytes(), `sendfile moved ${kernel} of ${layerBytes()} warm layer bytes`);
  const blobLines = (await b.logLines()).filter((l) => l['msg'] === 'request' && String(l['path']).includes('/blobs/') && l['outcome'] === 'hit');
  const logged = blobLines.reduce((n, l) => n + Number(l['bytes']), 0);
  assert.ok(logged >= layerBytes(), `access log counted ${logged} bytes for ${layerBytes()} layer bytes served`);
});

test('http.sendfile: false and TLS copy every byte, and serve the same image', async () => {
  const off = await berthWith({ sendfile: false });
  await saysAtStart(off, 'http.sendfile: false');
  await pullTwice(off, off.host);
  assert.equal(sampleSum(await scrape(off.url), 'berth_sendfile_bytes_total'), 0);

  const tlsDir = path.join(work, 'tls');
  await run(process.execPath, [BERTH_BIN, 'cert', 'generate', '--host', 'localhost', '--ip', '127.0.0.1', '--out', tlsDir]);
  const tlsPort = await freePort();
  const tls = await berthWith({
    listeners: [{ addr: `127.0.0.1:${tlsPort}`, tls: { certificate: path.join(tlsDir, 'tls.crt'), key: path.join(tlsDir, 'tls.key') } }],
  });
  const trustDir = path.join(work, 'trust');
  await mkdir(trustDir);
  await copyFile(path.join(tlsDir, 'ca.crt'), path.join(trustDir, 'ca.crt'));
  await pullTwice(tls, `127.0.0.1:${tlsPort}`, { certDir: trustDir });
  assert.equal(sampleSum(await scrape(tls.url), 'berth_sendfile_bytes_total'), 0, 'no byte of a TLS response went around TLS');
});
