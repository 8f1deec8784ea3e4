/** @module e2e/bundles.test — `berth export` and `berth import`: bundles skopeo reads, imported into a second store and pulled by their names with the registry stopped; corrupt, killed, delta and skopeo-written bundles. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, open, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import bcrypt from 'bcryptjs';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, buildIndex, isolatedSkopeoEnv, pushImage, type BuiltImage, type BuiltIndex } from '../fixtures/image.js';
import { BERTH_BIN, berthCli, startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull } from '../fixtures/clients.js';
import { makeTempDir, removeDir, run, waitFor } from '../fixtures/proc.js';
import { api } from '../fixtures/admin.js';
import { PUSHER, queuedJobs } from '../fixtures/push.js';
import { digestOf } from '../../src/oci/digest.js';
import { tarEntries } from '../../src/storage/tar-index.js';

const MiB = 1 << 20;
let registry: Registry;
let berth: Berth;
let work: string;
let a: BuiltImage;
let b: BuiltImage;
let sig: BuiltImage;
let multi: BuiltIndex;
let big: BuiltImage;
/** Names as nodes write them: the central registry's host in front. */
const name = (repoTag: string) => `${registry.host}/${repoTag}`;
const sigTag = () => `${a.manifestDigest.replace(':', '-')}.sig`;

async function skopeo(args: string[]): Promise<string> {
  const env = await isolatedSkopeoEnv(work);
  return (await run('skopeo', ['--insecure-policy', ...args], { env, timeoutMs: 120_000 })).stdout;
}

/** A config naming a fresh store under work/, mirroring the registry (as the site's berth would). */
async function siteConfig(label: string): Promise<{ file: string; root: string }> {
  const root = path.join(work, `${label}-store`);
  const file = path.join(work, `${label}.yml`);
  await writeFile(file, stringify({ version: 0.1, storage: { filesystem: { rootdirectory: root } }, proxy: { remoteurl: registry.url } }));
  return { file, root };
}

/** An image of many layers, so a kill lands mid-way however fast blobs are copied and hashed; its layout names it `ref`. */
async function manyLayers(ref: string): Promise<BuiltImage> {
  const many = await buildImage({ layers: 16, layerSize: 8 * MiB, tag: 'v1' });
  const indexFile = path.join(many.dir, 'index.json');
  const index = JSON.parse(await readFile(indexFile, 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
  for (const m of index.manifests) m.annotations = { 'org.opencontainers.image.ref.name': ref };
  await writeFile(indexFile, JSON.stringify(index));
  return many;
}

/** Which of `digests` the store at `root` holds. */
async function storedOf(root: string, digests: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const d of digests)
    if ((await readdir(path.join(root, 'blobs', 'sha256', d.slice(7, 9))).catch(() => [] as string[])).includes(d.slice(7))) found.push(d);
  return found;
}

/** Starts `berth import` of `bundle` into the site's store and kills it with SIGKILL once one of `layers` is stored. */
async function killMidway(site: { file: string; root: string }, bundle: string, layers: readonly string[]): Promise<void> {
  const child = spawn(process.execPath, [BERTH_BIN, 'import', '--config', site.file, bundle], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await waitFor(async () => (await storedOf(site.root, layers)).length >= 1, 60_000, { what: 'a first layer imported', intervalMs: 5 });
  child.kill('SIGKILL');
  await exited;
}

async function layoutBlobs(dir: string): Promise<string[]> {
  return (await readdir(path.join(dir, 'blobs', 'sha256'))).map((h) => `sha256:${h}`).sort();
}

before(async () => {
  work = await makeTempDir('berth-e2e-bundles-');
  registry = await startRegistry({ auth: 'none' });
  a = await buildImage({ layers: 2, layerSize: MiB, tag: 'v1' });
  b = await buildImage({ layers: 2, layerSize: MiB, tag: 'v1' });
  sig = await buildImage({ layers: 1, layerSize: 1024, tag: 'sig' });
  multi = await buildIndex({ layers: 1, layerSize: 512 * 1024, tag: 'v1', platforms: ['linux/amd64', 'linux/arm64'] });
  big = await buildImage({ layers: 4, layerSize: 48 * MiB, tag: 'v1' });
  await pushImage(a, registry.url, 'xing/a:v1');
  await pushImage(b, registry.url, 'xing/b:v1');
  await pushImage(sig, registry.url, `xing/a:${a.manifestDigest.replace(':', '-')}.sig`);
  await pushImage(multi, registry.url, 'xing/multi:v1');
  await pushImage(big, registry.url, 'xing/big:v1');
  berth = await startBerth({ proxy: { remoteurl: registry.url } });
  // The site that exports has pulled these (the signature too, as a verifying node would).
  for (const ref of ['xing/a:v1', 'xing/b:v1', `xing/a:${sigTag()}`])
    await skopeoPull(`${berth.host}/${ref}`, path.join(work, `pulled-${ref.replace(/[/:]/g, '_')}`));
});

after(async () => {
  await berth?.stop();
  await registry?.stop();
  for (const img of [a, b, sig, multi, big]) await img?.remove();
  await removeDir(work);
});

test('export from the store (berth running) to a directory and to a .tar: skopeo reads each image by its original name, the signature came along', async () => {
  const out = path.join(work, 'ab');
  const r = await berthCli(['export', '--config', berth.configFile, '--output', out, name('xing/a:v1'), name('xing/b:v1')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /exported 2 image\(s\)/);
  const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; annotations: Record<string, string> }>;
  };
  const names = index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']);
  assert.deepEqual(names.sort(), [name('xing/a:v1'), name(`xing/a:${sigTag()}`), name('xing/b:v1')].sort());
  const inspected = JSON.parse(await skopeo(['inspect', `oci:${out}:${name('xing/a:v1')}`])) as { Digest: string };
  assert.equal(inspected.Digest, a.manifestDigest);
  const copied = path.join(work, 'copied-a');
  await skopeo(['copy', `oci:${out}:${name('xing/a:v1')}`, `dir:${copied}`]);
  for (const blob of a.blobs) assert.ok((await readdir(copied)).includes(blob.digest.slice(7)), blob.digest);
  const expected = [a, b, sig].flatMap((i) => [i.manifestDigest, ...i.blobs.map((x) => x.digest)]);
  assert.deepEqual(await layoutBlobs(out), [...new Set(expected)].sort());
  // The same as one tar, its blobs copied in from the store's files: skopeo copies the image out of the archive.
  const archive = path.join(work, 'ab.tar');
  const t = await berthCli(['export', '--config', berth.configFile, '--output', archive, name('xing/a:v1'), name('xing/b:v1')]);
  assert.equal(t.code, 0, t.stderr);
  const fromArchive = path.join(work, 'copied-a-tar');
  await skopeo(['copy', `oci-archive:${archive}:${name('xing/a:v1')}`, `dir:${fromArchive}`]);
  for (const blob of a.blobs) assert.ok((await readdir(fromArchive)).includes(blob.digest.slice(7)), blob.digest);
  assert.equal(JSON.parse(await skopeo(['inspect', `oci-archive:${archive}:${name('xing/b:v1')}`])).Digest, b.manifestDigest);
});

test('export through a running berth to a .tar with one platform of an index: skopeo reads the archive', async () => {
  const out = path.join(work, 'multi.tar');
  const r = await berthCli(['export', '--server', berth.url, '--platform', 'linux/amd64', '--output', out, name('xing/multi:v1'), name('xing/a:v1')]);
  assert.equal(r.code, 0, r.stderr);
  const inspected = JSON.parse(await skopeo(['inspect', '--raw', `oci-archive:${out}:${name('xing/multi:v1')}`])) as { manifests: unknown[] };
  assert.equal(inspected.manifests.length, 2);
  const amd = JSON.parse(await skopeo(['inspect', `oci-archive:${out}:${name('xing/multi:v1')}`])) as { Architecture: string; Layers: string[] };
  assert.equal(amd.Architecture, 'amd64');
  const listed = await run('tar', ['-tf', out]);
  const arm = multi.images[1]!;
  assert.ok(!listed.stdout.includes(arm.layers[0]!.digest.slice(7)), 'the arm64 layer stays out');
  assert.ok(listed.stdout.includes(multi.images[0]!.layers[0]!.digest.slice(7)));
});

test('export straight from the registry (--from-registry) writes a layout skopeo reads', async () => {
  const out = path.join(work, 'from-registry');
  const r = await berthCli(['export', '--from-registry', registry.url, '-o', out, 'xing/b:v1']);
  assert.equal(r.code, 0, r.stderr);
  const inspected = JSON.parse(await skopeo(['inspect', `oci:${out}:xing/b:v1`])) as { Digest: string };
  assert.equal(inspected.Digest, b.manifestDigest);
  const missing = await berthCli(['export', '--from-registry', registry.url, '-o', path.join(work, 'none'), 'xing/nothing:v1']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /not exported: xing\/nothing:v1: not found in http:\/\/127\.0\.0\.1:\d+/);
  await assert.rejects(readdir(path.join(work, 'none')), 'nothing written when no image was found');
});

test('a delta bundle (--since) carries only the blobs the site does not hold', async () => {
  const first = path.join(work, 'first');
  const delta = path.join(work, 'delta');
  assert.equal((await berthCli(['export', '--server', berth.url, '-o', first, name('xing/a:v1')])).code, 0);
  const r = await berthCli(['export', '--server', berth.url, '--since', first, '-o', delta, name('xing/a:v1'), name('xing/b:v1')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /left out \(held by --since\)/);
  // Manifests always travel (they are small and name the images); of the layers only b's.
  const expected = [a.manifestDigest, sig.manifestDigest, b.manifestDigest, ...b.blobs.map((x) => x.digest)];
  assert.deepEqual(await layoutBlobs(delta), [...new Set(expected)].sort());
  // A site's reported state: `berth ls --json` of a store that holds everything leaves only the manifests to carry.
  const ls = await berthCli(['ls', '--json', '--config', berth.configFile]);
  assert.equal(ls.code, 0, ls.stderr);
  const state = path.join(work, 'state.json');
  await writeFile(state, ls.stdout);
  const onlyManifests = path.join(work, 'only-manifests');
  assert.equal((await berthCli(['export', '--server', berth.url, '--since', state, '-o', onlyManifests, name('xing/a:v1'), name('xing/b:v1')])).code, 0);
  assert.deepEqual(await layoutBlobs(onlyManifests), [a.manifestDigest, sig.manifestDigest, b.manifestDigest].sort());
});

test('imports into a second store; with the registry stopped the images pull by their original names, byte-identical', async () => {
  // skopeo's own layout of an image berth never saw: it imports too.
  const fromSkopeo = path.join(work, 'skopeo-layout');
  await skopeo(['copy', '--preserve-digests', '--src-tls-verify=false', `docker://${name('xing/big:v1')}`, `oci:${fromSkopeo}:${name('xing/big:v1')}`]);
  const site = await siteConfig('site');
  await registry.down();
  try {
    for (const bundle of ['ab', 'first', 'delta', 'skopeo-layout']) {
      const r = await berthCli(['import', '--config', site.file, path.join(work, bundle)]);
      assert.equal(r.code, 0, `${bundle}: ${r.stderr}`);
    }
    const again = await berthCli(['import', '--config', site.file, path.join(work, 'ab')]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /imported 0 blob\(s\) \(0 B\), \d+ already in the store/);
    const edge = await startBerth({ root: site.root, proxy: { remoteurl: registry.url } });
    try {
      for (const [img, ref] of [
        [a, 'xing/a:v1'],
        [b, 'xing/b:v1'],
        [sig, `xing/a:${sigTag()}`],
        [big, 'xing/big:v1'],
      ] as const) {
        const pulled = await skopeoPull(`${edge.host}/${ref}`, path.join(work, `edge-${ref.replace(/[/:]/g, '_')}`));
        assert.equal(pulled.manifestDigest, img.manifestDigest, ref);
        assert.deepEqual(pulled.blobs.map((x) => x.digest).sort(), img.blobs.map((x) => x.digest).sort());
      }
      // Held like `warm --pin`: eviction leaves imported images alone.
      const listed = (await api(edge.url, 'GET', '/api/v1/images?q=xing/')).json as Array<{ repository: string; tag: string; pinned: boolean }>;
      for (const repoTag of ['xing/a:v1', 'xing/b:v1', 'xing/big:v1']) {
        const row = listed.find((r) => `${r.repository}:${r.tag}` === repoTag);
        assert.equal(row?.pinned, true, `${repoTag} in ${JSON.stringify(listed)}`);
      }
      // Each import into the stopped store is on record for the dashboard.
      const bundles = (await api(edge.url, 'GET', '/api/v1/bundles')).json as { total: number; items: Array<{ source: string; blobsSkipped: number }> };
      assert.equal(bundles.total, 5);
      assert.equal(bundles.items[0]!.source, path.join(work, 'ab'));
      assert.ok(bundles.items[0]!.blobsSkipped > 0);
    } finally {
      await edge.stop();
    }
  } finally {
    await registry.up();
  }
});

test('imported for a write-behind upstream: nothing is queued for replication and nothing is pushed to the registry', async () => {
  const root = path.join(work, 'behind-store');
  const htpasswd = path.join(work, 'behind-htpasswd');
  await writeFile(htpasswd, `${PUSHER.username}:${bcrypt.hashSync(PUSHER.password, 4)}\n`);
  const config = {
    version: 0.1,
    storage: { filesystem: { rootdirectory: root } },
    auth: { htpasswd: { path: htpasswd }, rules: [{ users: ['anonymous', '*'], actions: ['*'] }] },
    admin: { trustloopback: true },
    proxy: { remoteurl: registry.url, pushmode: 'write-behind' },
  };
  const file = path.join(work, 'behind.yml');
  await writeFile(file, stringify(config));
  const writesBefore = (await registry.requests()).filter((r) => r.method !== 'GET' && r.method !== 'HEAD').length;
  const r = await berthCli(['import', '--config', file, path.join(work, 'ab')]);
  assert.equal(r.code, 0, r.stderr);
  const edge = await startBerth({ root, config });
  try {
    assert.deepEqual(queuedJobs(edge), [], 'nothing queued for the upstream');
    const pulled = await skopeoPull(`${edge.host}/xing/a:v1`, path.join(work, 'behind-pulled'));
    assert.equal(pulled.manifestDigest, a.manifestDigest);
    // Long enough for a write-behind worker to have pushed something, were anything queued.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.deepEqual(queuedJobs(edge), []);
  } finally {
    await edge.stop();
  }
  const writes = (await registry.requests()).filter((r) => r.method !== 'GET' && r.method !== 'HEAD').length;
  assert.equal(writes, writesBefore, 'the registry received no push');
});

test('a corrupt blob in a bundle is refused and named; the rest is imported; exit 1', async () => {
  const damaged = path.join(work, 'damaged');
  await cp(path.join(work, 'ab'), damaged, { recursive: true });
  const layer = a.layers[1]!.digest;
  const fh = await open(path.join(damaged, 'blobs', 'sha256', layer.slice(7)), 'r+');
  await fh.write(Buffer.from('XXXX'), 0, 4, 1000);
  await fh.close();
  const site = await siteConfig('damaged');
  const r = await berthCli(['import', '--config', site.file, '-q', damaged]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`refused blob ${layer}: content does not match digest`));
  assert.match(r.stderr, new RegExp(`not imported: ${name('xing/a:v1')}: manifest ${a.manifestDigest} needs ${layer}`));
  assert.match(r.stdout, new RegExp(`image\\(s\\) pinned: .*${name('xing/b:v1')}`));
  const stored = await readdir(path.join(site.root, 'blobs', 'sha256', layer.slice(7, 9))).catch(() => [] as string[]);
  assert.ok(!stored.includes(layer.slice(7)), 'the corrupt blob is never stored');
});

test('an import killed with SIGKILL mid-way resumes: blobs already stored are not read again', async () => {
  const manyName = name('xing/many:v1');
  const many = await manyLayers(manyName);
  try {
    const site = await siteConfig('killed');
    const layers = many.layers.map((l) => l.digest);
    const storedLayers = async () => (await storedOf(site.root, layers)).length;
    await killMidway(site, many.dir, layers);
    const before = await storedLayers();
    assert.ok(before < layers.length, `killed before the end (${before} of ${layers.length} layers stored)`);
    const r = await berthCli(['import', '--config', site.file, many.dir]);
    assert.equal(r.code, 0, r.stderr);
    const present = Number(/(\d+) already in the store/.exec(r.stdout)?.[1]);
    assert.ok(present >= before, r.stdout);
    assert.equal(await storedLayers(), layers.length);
    // The same content as a tar is all there already.
    const bundle = path.join(work, 'many.tar');
    assert.equal((await berthCli(['export', '--config', site.file, '-o', bundle, manyName])).code, 0);
    const fromTar = await berthCli(['import', '--config', site.file, bundle]);
    assert.equal(fromTar.code, 0, fromTar.stderr);
    assert.match(fromTar.stdout, /imported 0 blob\(s\)/);
  } finally {
    await many.remove();
  }
});

test('a .tar import killed with SIGKILL resumes without reading the blobs already stored: their bytes in the tar, overwritten with garbage, are never looked at', async () => {
  const manyName = name('xing/many-tar:v1');
  const many = await manyLayers(manyName);
  try {
    const source = await siteConfig('tar-source');
    assert.equal((await berthCli(['import', '--config', source.file, many.dir])).code, 0);
    const bundle = path.join(work, 'many-killed.tar');
    assert.equal((await berthCli(['export', '--config', source.file, '-o', bundle, manyName])).code, 0);

    const site = await siteConfig('tar-killed');
    const layers = many.layers.map((l) => l.digest);
    const stored = () => storedOf(site.root, layers);
    await killMidway(site, bundle, layers);
    const before = await stored();
    assert.ok(before.length < layers.length, `killed before the end (${before.length} of ${layers.length} layers stored)`);

    // Every blob the store holds now is spoiled in the tar: reading one again would refuse it.
    const fh = await open(bundle, 'r+');
    try {
      for await (const e of tarEntries(fh, (await fh.stat()).size)) {
        if (!before.some((d) => e.name === `blobs/sha256/${d.slice(7)}`)) continue;
        await fh.write(Buffer.alloc(e.size, 0x58), 0, e.size, e.offset);
      }
    } finally {
      await fh.close();
    }
    const r = await berthCli(['import', '--config', site.file, bundle]);
    assert.equal(r.code, 0, r.stderr);
    const present = Number(/(\d+) already in the store/.exec(r.stdout)?.[1]);
    assert.ok(present >= before.length, r.stdout);
    assert.deepEqual((await stored()).sort(), [...layers].sort());
    for (const d of layers) assert.equal(digestOf(await readFile(path.join(site.root, 'blobs', 'sha256', d.slice(7, 9), d.slice(7)))), d);
    // The spoiled bundle into a store that lacks those blobs: each is refused and named, the rest stored, exit 1.
    const fresh = await siteConfig('tar-spoiled');
    const spoiled = await berthCli(['import', '--config', fresh.file, '-q', bundle]);
    assert.equal(spoiled.code, 1);
    for (const d of before) assert.match(spoiled.stderr, new RegExp(`refused blob ${d}: content does not match digest`));
  } finally {
    await many.remove();
  }
});
