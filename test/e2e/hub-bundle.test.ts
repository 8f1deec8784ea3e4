/**
 * @module e2e/hub-bundle.test — the hub prepares a delta bundle for a site: a real site berth tells
 * the hub which blobs it holds, the hub's tar for v1+v2 carries only what v2 adds, `berth import`
 * loads it with the registry stopped and skopeo pulls v2 by its original name; the refusals.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import tar from 'tar-stream';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { berthCli, startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull } from '../fixtures/clients.js';
import { makeTempDir, removeDir, waitFor } from '../fixtures/proc.js';
import { HUB_TOKEN, hubCall, simulatedReport, sitesUp, startSite } from '../fixtures/fleet.js';

const MiB = 1 << 20;
const admin = { username: 'ops', password: 'bundles-for-the-rig' };
let registry: Registry;
let hub: Berth;
let site: Berth;
let v1: BuiltImage;
let v2: BuiltImage;
let big: BuiltImage;
let work: string;
const name = (repoTag: string) => `${registry.host}/${repoTag}`;

/** GET (or HEAD) of a site's bundle with the hub token; the body is written to `file` when given. */
async function bundle(
  siteName: string,
  query: string,
  opts: { file?: string; method?: 'GET' | 'HEAD'; auth?: string | null } = {},
): Promise<{ status: number; headers: Headers; json?: { errors: Array<{ code: string; message: string }> } }> {
  const auth = opts.auth === undefined ? `Bearer ${HUB_TOKEN}` : opts.auth;
  const res = await fetch(`${hub.url}/api/v1/sites/${siteName}/bundle?${query}`, {
    method: opts.method ?? 'GET',
    headers: auth ? { authorization: auth } : {},
  });
  if (res.status === 200 && opts.file && res.body) {
    await pipeline(Readable.fromWeb(res.body as ReadableStream), createWriteStream(opts.file));
    return { status: res.status, headers: res.headers };
  }
  const text = await res.text();
  return { status: res.status, headers: res.headers, ...(text.startsWith('{') ? { json: JSON.parse(text) as never } : {}) };
}

/** Entry names of a tar file. */
async function tarEntries(file: string): Promise<string[]> {
  const names: string[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    names.push(header.name);
    stream.on('end', next);
    stream.resume();
  });
  await pipeline(createReadStream(file), extract);
  return names;
}

before(async () => {
  work = await makeTempDir('berth-e2e-hub-bundle-');
  registry = await startRegistry({ auth: 'none' });
  // Same seed: v2 keeps v1's two layers and adds a third (and its own config).
  v1 = await buildImage({ layers: 2, layerSize: MiB, tag: 'v1', seed: 'rig-app' });
  v2 = await buildImage({ layers: 3, layerSize: MiB, tag: 'v2', seed: 'rig-app' });
  assert.deepEqual(
    v2.layers.slice(0, 2).map((l) => l.digest),
    v1.layers.map((l) => l.digest),
  );
  await pushImage(v1, registry.url, 'xing/app:v1');
  await pushImage(v2, registry.url, 'xing/app:v2');
  big = await buildImage({ layers: 3, layerSize: 16 * MiB, tag: 'v1' });
  await pushImage(big, registry.url, 'xing/big:v1');
  // The hub is a berth with its own upstream: bundles come through its cache.
  hub = await startBerth({ config: { version: 0.1, hub: { token: HUB_TOKEN }, admin: { ...admin }, proxy: { remoteurl: registry.url } } });
  site = await startSite('rig-7', hub.url, { remoteurl: registry.url }, { admin: { ...admin } });
  await sitesUp(hub.url, ['rig-7']);
});

after(async () => {
  await site?.stop();
  await hub?.stop();
  await registry?.stop();
  for (const img of [v1, v2, big]) await img?.remove();
  await removeDir(work);
});

test('refusals: unknown site 404, no held list yet 409, bad names, images and platforms 400, no token 401, a bad held list 400', async () => {
  const unknown = await bundle('no-such-site', `images=${name('xing/app:v1')}`);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json?.errors[0]?.code, 'NAME_UNKNOWN');
  assert.match(unknown.json?.errors[0]?.message ?? '', /GET \/api\/v1\/sites/);

  // A site that reports without a held list (an older berth) gets no bundle: the hub cannot know what to leave out.
  const poll = await hubCall(hub.url, 'POST', '/api/v1/fleet/poll', { report: simulatedReport('old-site', 500), results: [], working: [] });
  assert.equal(poll.status, 200);
  assert.equal(poll.json.heldHash, undefined, 'a site without a hash is not asked for a list');
  const early = await bundle('old-site', `images=${name('xing/app:v1')}`);
  assert.equal(early.status, 409);
  assert.match(early.json?.errors[0]?.message ?? '', /has not told this hub which blobs it holds/);

  for (const [siteName, query, code] of [
    ['..%2F..%2Fetc', `images=${name('xing/app:v1')}`, 'NAME_INVALID'],
    ['rig-7', 'images=', 'UNSUPPORTED'],
    ['rig-7', `images=${encodeURIComponent('UPPER/Case::x')}`, 'NAME_INVALID'],
    ['rig-7', `images=${name('xing/app:v1')}&platform=linux`, 'UNSUPPORTED'],
    ['rig-7', `images=${Array.from({ length: 101 }, (_, i) => `xing/app:t${i}`).join(',')}`, 'UNSUPPORTED'],
  ] as const) {
    const r = await bundle(siteName, query);
    assert.equal(r.status, 400, `${siteName} ${query.slice(0, 80)}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json?.errors[0]?.code, code);
  }
  assert.equal((await bundle('rig-7', `images=${name('xing/app:v1')}`, { auth: null })).status, 401);
  assert.equal((await bundle('rig-7', `images=${name('xing/app:v1')}`, { auth: 'Bearer wrong' })).status, 401);
  // The dashboard's admin credentials open it too (read-only, like GET /api/v1/sites).
  const basic = `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}`;
  await waitFor(async () => (await bundle('rig-7', `images=${name('xing/app:v1')}`, { method: 'HEAD', auth: basic })).status === 200, 20_000, {
    what: 'the site to send its held list',
  });
  const missing = await bundle('rig-7', `images=${name('xing/app:nope')}`);
  assert.equal(missing.status, 404);
  assert.equal(missing.json?.errors[0]?.code, 'MANIFEST_UNKNOWN');

  const held = await fetch(`${hub.url}/api/v1/fleet/held/rig-7`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${HUB_TOKEN}`, 'content-type': 'text/plain' },
    body: 'sha256:abc\n../../etc/passwd\n',
  });
  assert.equal(held.status, 400);
  const asAdmin = await fetch(`${hub.url}/api/v1/fleet/held/rig-7`, {
    method: 'PUT',
    headers: { authorization: basic, 'content-type': 'text/plain' },
    body: '',
  });
  assert.equal(asAdmin.status, 401, 'only sites (the hub token) write held lists');
});

test('a client that hangs up mid-bundle: the hub stops, logs it, and answers the next request', async () => {
  const res = await fetch(`${hub.url}/api/v1/sites/rig-7/bundle?images=${name('xing/big:v1')}`, { headers: { authorization: `Bearer ${HUB_TOKEN}` } });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read();
  await reader.cancel();
  await waitFor(async () => (await hub.logLines()).some((l) => l['msg'] === 'site bundle cut off' && l['site'] === 'rig-7'), 20_000, {
    what: 'the hub to log the bundle it could not finish',
  });
  assert.equal((await bundle('rig-7', `images=${name('xing/app:v1')}`, { method: 'HEAD' })).status, 200);
});

test('a site that pulled v1 gets a bundle of v1+v2 carrying only what v2 adds; imported with the registry stopped, skopeo pulls v2 by its name', async () => {
  await skopeoPull(`${site.host}/xing/app:v1`, path.join(work, 'pulled-v1'));
  // The site's next polls tell the hub it holds v1 whole: a v1-only bundle then carries no blob.
  await waitFor(async () => (await bundle('rig-7', `images=${name('xing/app:v1')}`, { method: 'HEAD' })).headers.get('x-berth-bundle-blobs') === '0', 30_000, {
    what: "the hub to know the site's v1 blobs",
  });

  const file = path.join(work, 'rig-7.tar');
  const got = await bundle('rig-7', `images=${name('xing/app:v1')},${name('xing/app:v2')}&platform=linux/amd64`, { file });
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('content-type'), 'application/x-tar');
  assert.match(got.headers.get('content-disposition') ?? '', /^attachment; filename="berth-rig-7-[0-9TZ-]+\.tar"$/);
  const entries = await tarEntries(file);
  const blobs = entries.filter((e) => e.startsWith('blobs/sha256/')).map((e) => `sha256:${e.slice('blobs/sha256/'.length)}`);
  const manifests = new Set([v1.manifestDigest, v2.manifestDigest]);
  // Manifests always travel (small; they name the images); of the other blobs only v2's config and new layer.
  assert.deepEqual(blobs.filter((d) => !manifests.has(d)).sort(), [v2.config.digest, v2.layers[2]!.digest].sort());
  assert.deepEqual(blobs.filter((d) => manifests.has(d)).sort(), [...manifests].sort());
  assert.ok(entries.includes('index.json') && entries.includes('oci-layout'));

  // The same delta from the CLI: the hub's registry API as the source, the site's list from the hub.
  const passwordFile = path.join(work, 'admin-password');
  await writeFile(passwordFile, `${admin.password}\n`);
  const list = await fetch(`${hub.url}/api/v1/sites/rig-7/held`, { headers: { authorization: `Bearer ${HUB_TOKEN}` } });
  assert.equal(list.status, 200);
  assert.ok((await list.text()).includes(v1.layers[0]!.digest));
  const cliTar = path.join(work, 'rig-7-cli.tar');
  const cli = await berthCli([
    'export',
    '--server',
    hub.url,
    '--username',
    admin.username,
    '--password-file',
    passwordFile,
    '--since',
    'site:rig-7',
    '-q',
    '-o',
    cliTar,
    name('xing/app:v1'),
    name('xing/app:v2'),
  ]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.deepEqual((await tarEntries(cliTar)).filter((e) => e.startsWith('blobs/')).sort(), entries.filter((e) => e.startsWith('blobs/')).sort());
  const noHub = await berthCli(['export', '--config', site.configFile, '--since', 'site:rig-7', '-o', cliTar, name('xing/app:v1')]);
  assert.equal(noHub.code, 2);
  assert.match(noHub.stderr, /--since site:NAME reads the list of the fleet hub/);

  // Over the disk: the registry is gone, the site loads the bundle through its admin API.
  await registry.stop();
  const imported = await berthCli(['import', '--server', site.url, '--username', admin.username, '--password-file', passwordFile, '-q', file]);
  assert.equal(imported.code, 0, imported.stderr);
  const pulled = await skopeoPull(`${site.host}/xing/app:v2`, path.join(work, 'pulled-v2'));
  assert.equal(pulled.manifestDigest, v2.manifestDigest);
  assert.deepEqual(pulled.blobs.map((b) => b.digest).sort(), v2.blobs.map((b) => b.digest).sort());
});
