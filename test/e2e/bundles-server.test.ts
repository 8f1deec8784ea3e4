/** @module e2e/bundles-server.test — `berth import --server`: a bundle loaded into a running berth (two workers, admin credentials) through its admin API; pulls by original names with the registry stopped, a corrupt blob refused, a killed import resumed, an unnamed layout named. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, open, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, isolatedSkopeoEnv, pushImage, type BuiltImage } from '../fixtures/image.js';
import { BERTH_BIN, berthCli, startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull } from '../fixtures/clients.js';
import { makeTempDir, removeDir, run, waitFor } from '../fixtures/proc.js';
import { api } from '../fixtures/admin.js';

const MiB = 1 << 20;
const admin = { username: 'ops', password: 'bundles-over-the-sea' };
let registry: Registry;
let site: Berth;
let work: string;
let passwordFile: string;
let a: BuiltImage;
let b: BuiltImage;
let big: BuiltImage;
let lone: BuiltImage;
const name = (repoTag: string) => `${registry.host}/${repoTag}`;

const importArgs = (bundle: string, ...extra: string[]) => [
  'import',
  '--server',
  site.url,
  '--username',
  admin.username,
  '--password-file',
  passwordFile,
  '-q',
  ...extra,
  bundle,
];

async function stored(root: string, digest: string): Promise<boolean> {
  return (await readdir(path.join(root, 'blobs', 'sha256', digest.slice(7, 9))).catch(() => [] as string[])).includes(digest.slice(7));
}

before(async () => {
  work = await makeTempDir('berth-e2e-bundles-server-');
  passwordFile = path.join(work, 'admin-password');
  await writeFile(passwordFile, `${admin.password}\n`);
  registry = await startRegistry({ auth: 'none' });
  a = await buildImage({ layers: 2, layerSize: MiB, tag: 'v1' });
  b = await buildImage({ layers: 2, layerSize: MiB, tag: 'v1' });
  big = await buildImage({ layers: 4, layerSize: 24 * MiB, tag: 'v1' });
  lone = await buildImage({ layers: 1, layerSize: 256 * 1024, tag: 'v1' });
  await pushImage(a, registry.url, 'xing/a:v1');
  await pushImage(b, registry.url, 'xing/b:v1');
  await pushImage(big, registry.url, 'xing/big:v1');
  await pushImage(lone, registry.url, 'xing/lone:v1');
  for (const [ref, out] of [
    [['xing/a:v1', 'xing/b:v1'], 'ab'],
    [['xing/big:v1'], 'big'],
  ] as const) {
    const r = await berthCli(['export', '--from-registry', registry.url, '-q', '-o', path.join(work, out), ...ref.map(name)]);
    assert.equal(r.code, 0, r.stderr);
  }
  // The site: two workers (admin paths go to the lead), admin credentials, a write-behind-free mirror of the registry.
  site = await startBerth({ config: { version: 0.1, http: { workers: 2 }, admin: { ...admin }, proxy: { remoteurl: registry.url } } });
});

after(async () => {
  await site?.stop();
  await registry?.stop();
  for (const img of [a, b, big, lone]) await img?.remove();
  await removeDir(work);
});

test('the bundle endpoints are admin-only: without credentials nothing is asked or stored', async () => {
  const asked = await api(site.url, 'POST', '/api/v1/bundles/missing', { blobs: [{ digest: a.layers[0]!.digest, size: MiB }] });
  assert.equal(asked.status, 401);
  const put = await request(`${site.url}/api/v1/bundles/blobs/${a.layers[0]!.digest}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': '4' },
    body: 'XXXX',
  });
  assert.equal(put.statusCode, 401);
  await put.body.dump();
  // With credentials, a body that is not the blob is refused and leaves nothing.
  const auth = `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}`;
  const wrong = await request(`${site.url}/api/v1/bundles/blobs/${a.layers[0]!.digest}`, {
    method: 'PUT',
    headers: { authorization: auth, 'content-type': 'application/octet-stream', 'content-length': '4' },
    body: 'XXXX',
  });
  const answer = (await wrong.body.json()) as { errors: Array<{ code: string }> };
  assert.equal(wrong.statusCode, 400);
  assert.ok(['SIZE_INVALID', 'DIGEST_INVALID'].includes(answer.errors[0]!.code), JSON.stringify(answer));
  assert.equal(await stored(site.root, a.layers[0]!.digest), false);
});

test('import --server with the registry stopped: pulls by the original names are byte-identical; a second import sends nothing', async () => {
  await registry.down();
  try {
    const r = await berthCli(importArgs(path.join(work, 'ab')));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`2 image\\(s\\) pinned: .*${name('xing/a:v1')}`));
    for (const [img, ref] of [
      [a, 'xing/a:v1'],
      [b, 'xing/b:v1'],
    ] as const) {
      const pulled = await skopeoPull(`${site.host}/${ref}`, path.join(work, `site-${ref.replace(/[/:]/g, '_')}`));
      assert.equal(pulled.manifestDigest, img.manifestDigest, ref);
      assert.deepEqual(pulled.blobs.map((x) => x.digest).sort(), img.blobs.map((x) => x.digest).sort());
    }
    const listed = (await api(site.url, 'GET', '/api/v1/images?q=xing/', undefined, admin)).json as Array<{ repository: string; tag: string; pinned: boolean }>;
    for (const repoTag of ['xing/a:v1', 'xing/b:v1'])
      assert.equal(listed.find((x) => `${x.repository}:${x.tag}` === repoTag)?.pinned, true, JSON.stringify(listed));
    const again = await berthCli(importArgs(path.join(work, 'ab')));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /imported 0 blob\(s\) \(0 B\), \d+ already in the store/);
  } finally {
    await registry.up();
  }
});

test('a corrupt blob is refused and named, never stored; the rest is imported; exit 1', async () => {
  const damaged = path.join(work, 'damaged');
  await cp(path.join(work, 'big'), damaged, { recursive: true });
  const layer = big.layers[2]!.digest;
  const fh = await open(path.join(damaged, 'blobs', 'sha256', layer.slice(7)), 'r+');
  await fh.write(Buffer.from('XXXX'), 0, 4, 4096);
  await fh.close();
  const r = await berthCli(importArgs(damaged));
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`refused blob ${layer}: content does not match digest`));
  assert.match(r.stderr, new RegExp(`not imported: ${name('xing/big:v1')}: manifest ${big.manifestDigest} needs ${layer}`));
  assert.equal(await stored(site.root, layer), false, 'the corrupt blob is never stored');
  for (const l of big.layers.filter((x) => x.digest !== layer)) assert.ok(await stored(site.root, l.digest), l.digest);
});

test('an import --server killed with SIGKILL resumes: only the missing blobs are sent', async () => {
  const bundle = path.join(work, 'big.tar');
  assert.equal((await berthCli(['export', '--from-registry', registry.url, '-q', '-o', bundle, name('xing/big:v1')])).code, 0);
  // A fresh site, so the killed run has everything still to send.
  const fresh = await startBerth({ config: { version: 0.1, admin: { ...admin }, proxy: { remoteurl: registry.url } } });
  try {
    const args = importArgs(bundle).map((x) => (x === site.url ? fresh.url : x));
    const child = spawn(process.execPath, [BERTH_BIN, ...args], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const count = async () => {
      let n = 0;
      for (const l of big.layers) n += (await stored(fresh.root, l.digest)) ? 1 : 0;
      return n;
    };
    await waitFor(async () => (await count()) >= 1, 60_000, { what: 'a first layer imported' });
    child.kill('SIGKILL');
    await exited;
    const before = await count();
    assert.ok(before < big.layers.length, 'killed before the end');
    const r = await berthCli(args);
    assert.equal(r.code, 0, r.stderr);
    const present = Number(/(\d+) already in the store/.exec(r.stdout)?.[1]);
    assert.ok(present >= before, r.stdout);
    assert.equal(await count(), big.layers.length);
    const pulled = await skopeoPull(`${fresh.host}/xing/big:v1`, path.join(work, 'fresh-big'));
    assert.equal(pulled.manifestDigest, big.manifestDigest);
  } finally {
    await fresh.stop();
  }
});

test('--name names the one unnamed entry of a layout skopeo wrote without :NAME', async () => {
  const layout = path.join(work, 'unnamed');
  const env = await isolatedSkopeoEnv(work);
  await run('skopeo', ['--insecure-policy', 'copy', '--preserve-digests', '--src-tls-verify=false', `docker://${name('xing/lone:v1')}`, `oci:${layout}`], {
    env,
    timeoutMs: 120_000,
  });
  const without = await berthCli(importArgs(layout));
  assert.equal(without.code, 1);
  assert.match(without.stderr, /has no org\.opencontainers\.image\.ref\.name annotation \(import with --name/);
  const r = await berthCli(importArgs(layout, '--name', name('xing/lone:v1')));
  assert.equal(r.code, 0, r.stderr);
  await registry.down();
  try {
    const pulled = await skopeoPull(`${site.host}/xing/lone:v1`, path.join(work, 'site-lone'));
    assert.equal(pulled.manifestDigest, lone.manifestDigest);
  } finally {
    await registry.up();
  }
});

test('each import is recorded: GET /api/v1/bundles lists when, source, images and blobs stored, skipped, refused, newest first, paged', async () => {
  const all = (await api(site.url, 'GET', '/api/v1/bundles?limit=100', undefined, admin)).json as {
    total: number;
    items: Array<{ at: number; source: string; images: string[]; blobsStored: number; blobsSkipped: number; blobsRefused: number; problems: string[] }>;
  };
  // ab twice, damaged, unnamed without and with --name.
  assert.equal(all.total, 5, JSON.stringify(all));
  const ab = all.items.filter((r) => r.source === path.join(work, 'ab'));
  assert.equal(ab.length, 2);
  const [second, first] = ab;
  assert.deepEqual(first!.images.sort(), [name('xing/a:v1'), name('xing/b:v1')].sort());
  assert.equal(first!.blobsStored, a.blobs.length + b.blobs.length + 2);
  assert.equal(second!.blobsStored, 0);
  assert.equal(second!.blobsSkipped, first!.blobsStored);
  const damaged = all.items.find((r) => r.source === path.join(work, 'damaged'))!;
  assert.equal(damaged.blobsRefused, 1);
  assert.deepEqual(damaged.images, []);
  assert.equal(damaged.problems.length, 1);
  assert.ok(
    all.items.every((r, i) => i === 0 || r.at <= all.items[i - 1]!.at),
    'newest first',
  );
  const page = (await api(site.url, 'GET', '/api/v1/bundles?limit=2&offset=2', undefined, admin)).json as { total: number; items: unknown[] };
  assert.equal(page.total, 5);
  assert.deepEqual(page.items, all.items.slice(2, 4));
  assert.equal((await api(site.url, 'GET', '/api/v1/bundles?limit=0', undefined, admin)).status, 400);
  assert.equal((await api(site.url, 'GET', '/api/v1/bundles')).status, 401);
});
