/** @module e2e/signatures.test — the verify: policy with the real signer: cosign signatures made in the central registry, checked by berth online and offline. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, buildIndex, pushImage, type BuiltImage, type BuiltIndex } from '../fixtures/image.js';
import { BERTH_BIN, berthCli, startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull } from '../fixtures/clients.js';
import { attestBundle, generateKeyPair, sign, signAsReferrer, type CosignKeys } from '../fixtures/cosign.js';
import { makeTempDir, removeDir, run, sleep } from '../fixtures/proc.js';
import { api, berthWarm } from '../fixtures/admin.js';
import { VERDICT_TTL_MS } from '../../src/cache/signature-policy.js';

let registry: Registry;
let berth: Berth;
let work: string;
let keys: CosignKeys;
let otherKeys: CosignKeys;
const images: Record<string, BuiltImage | BuiltIndex> = {};
/** Berths stopped for a restart on the same store: their directories go at the end. */
const retired: Berth[] = [];

/** How cosign attaches the signature: the .sig tag, a Sigstore bundle referrer, a simple signing referrer (both through the referrers tag). */
type How = 'sig' | 'bundle' | 'referrer';
const signers = { sig: sign, bundle: attestBundle, referrer: signAsReferrer };

/** Pushes a fresh one-layer image as `repoTag`; signed with `by` when given. */
async function publish(repoTag: string, by?: CosignKeys, index = false, how: How = 'sig'): Promise<BuiltImage | BuiltIndex> {
  const image = index ? await buildIndex({ layers: 1, layerSize: 64 * 1024, tag: 'v1' }) : await buildImage({ layers: 2, layerSize: 64 * 1024, tag: 'v1' });
  const digest = await pushImage(image, registry.url, repoTag);
  if (by) await signers[how](`${registry.host}/${repoTag.split(':')[0]}@${digest}`, by, work);
  images[repoTag] = image;
  return image;
}

function config(root?: string): Parameters<typeof startBerth>[0] {
  return {
    ...(root ? { root } : {}),
    config: {
      version: 0.1,
      http: { workers: 1 },
      proxy: { remoteurl: registry.url, tagttl: '1s' },
      verify: [
        { repositories: ['warn/*'], mode: 'warn', cosign: { keys: [keys.pub] } },
        { repositories: ['xing/*'], mode: 'enforce', cosign: { keys: [keys.pub] } },
      ],
    },
  };
}

before(async () => {
  work = await makeTempDir('berth-e2e-signatures-');
  await mkdir(path.join(work, 'other'));
  keys = await generateKeyPair(work);
  otherKeys = await generateKeyPair(path.join(work, 'other'));
  registry = await startRegistry({ auth: 'none', deleteEnabled: true });
  await publish('xing/signed:v1', keys);
  await publish('xing/unsigned:v1');
  await publish('xing/otherkey:v1', otherKeys);
  await publish('xing/multi:v1', keys, true);
  await publish('xing/unsignedmulti:v1', undefined, true);
  await publish('xing/warmed:v1', keys);
  await publish('xing/revoked:v1', keys);
  await publish('xing/bundled:v1', keys, false, 'bundle');
  await publish('xing/bundleother:v1', otherKeys, false, 'bundle');
  await publish('xing/bundlewarm:v1', keys, false, 'bundle');
  await publish('xing/referred:v1', keys, false, 'referrer');
  await publish('warn/unsigned:v1');
  await publish('free/unsigned:v1');
  berth = await startBerth(config());
});

after(async () => {
  await berth?.stop();
  for (const b of retired) await b.cleanup();
  await registry?.stop();
  for (const image of Object.values(images)) await image.remove();
  await removeDir(work);
});

const pull = (ref: string, name: string) => skopeoPull(`${berth.host}/${ref}`, path.join(work, name));

async function denial(repository: string, reference: string): Promise<{ status: number; code: string; message: string }> {
  const res = await fetch(`${berth.url}/v2/${repository}/manifests/${reference}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' },
  });
  const body = (await res.json()) as { errors?: Array<{ code: string; message: string }> };
  return { status: res.status, code: body.errors?.[0]?.code ?? '', message: body.errors?.[0]?.message ?? '' };
}

async function checks(): Promise<Record<string, number>> {
  const text = await (await fetch(`${berth.url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^berth_signature_checks_total\{result="(\w+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

test('a signed image is served in an enforcing repository: skopeo copies it whole', async () => {
  const pulled = await pull('xing/signed:v1', 'signed');
  assert.equal(pulled.manifestDigest, images['xing/signed:v1']!.manifestDigest);
  assert.deepEqual(pulled.blobs.map((b) => b.digest).sort(), images['xing/signed:v1']!.blobs.map((b) => b.digest).sort());
  assert.ok((await checks())['valid']! >= 1);
});

test('an unsigned image is refused with 403 DENIED naming repository, digest and what is missing; its blobs too', async () => {
  const image = images['xing/unsigned:v1']!;
  await assert.rejects(pull('xing/unsigned:v1', 'unsigned'), /denied|403/i);
  const d = await denial('xing/unsigned', 'v1');
  assert.equal(d.status, 403);
  assert.equal(d.code, 'DENIED');
  assert.match(d.message, /repository xing\/unsigned/);
  assert.ok(d.message.includes(image.manifestDigest), d.message);
  assert.match(d.message, /no cosign signature found/);
  const byDigest = await denial('xing/unsigned', image.manifestDigest);
  assert.equal(byDigest.status, 403);
  const head = await fetch(`${berth.url}/v2/xing/unsigned/manifests/v1`, { method: 'HEAD' });
  assert.equal(head.status, 403);
  for (const blob of image.blobs) {
    const res = await fetch(`${berth.url}/v2/xing/unsigned/blobs/${blob.digest}`);
    assert.equal(res.status, 403, `blob ${blob.digest} of a refused image`);
    await res.arrayBuffer();
  }
  assert.ok((await checks())['denied']! >= 1);
});

test('an image signed with a key berth does not trust is refused, saying the signature does not verify', async () => {
  await assert.rejects(pull('xing/otherkey:v1', 'otherkey'), /denied|403/i);
  const d = await denial('xing/otherkey', 'v1');
  assert.equal(d.status, 403);
  assert.match(d.message, /does not verify with any configured key/);
  assert.ok(d.message.includes(keys.pub), d.message);
});

test('a signed index is served, and the platform manifest the client asks for passes through it', async () => {
  const pulled = await pull('xing/multi:v1', 'multi');
  const index = images['xing/multi:v1'] as BuiltIndex;
  assert.ok(
    index.images.some((i) => i.manifestDigest === pulled.manifestDigest),
    'skopeo picked one platform manifest of the signed index',
  );
});

test('an unsigned index is refused, and so are its platform manifests asked for by digest', async () => {
  const index = images['xing/unsignedmulti:v1'] as BuiltIndex;
  const d = await denial('xing/unsignedmulti', 'v1');
  assert.equal(d.status, 403);
  assert.ok(d.message.includes(index.manifestDigest), d.message);
  for (const child of index.images) {
    const c = await denial('xing/unsignedmulti', child.manifestDigest);
    assert.equal(c.status, 403, `platform manifest ${child.manifestDigest}`);
    assert.ok(c.message.includes(child.manifestDigest), c.message);
  }
});

test('warm-up brings the signature along with the image', async () => {
  const r = await berthWarm(['--server', berth.url, 'xing/warmed:v1']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const digest = images['xing/warmed:v1']!.manifestDigest;
  const sigTag = `${digest.replace(':', '-')}.sig`;
  assert.ok(
    (await registry.requests()).some((q) => q.method === 'GET' && q.uri.includes(`/v2/xing/warmed/manifests/${sigTag}`)),
    'berth fetched the .sig manifest while warming',
  );
});

test('a signature removed upstream (revoked) is noticed at the next tag check: the image is refused', async () => {
  const digest = images['xing/revoked:v1']!.manifestDigest;
  assert.equal((await pull('xing/revoked:v1', 'revoked')).manifestDigest, digest);
  const sigTag = `${digest.replace(':', '-')}.sig`;
  const head = await fetch(`${registry.url}/v2/xing/revoked/manifests/${sigTag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  const sigDigest = head.headers.get('docker-content-digest');
  assert.ok(sigDigest, `HEAD ${sigTag}: ${head.status}`);
  const del = await fetch(`${registry.url}/v2/xing/revoked/manifests/${sigDigest}`, { method: 'DELETE' });
  assert.equal(del.status, 202);
  // The tag TTL (1s) and the time a verdict is reused.
  await sleep(VERDICT_TTL_MS + 1_500);
  const d = await denial('xing/revoked', 'v1');
  assert.equal(d.status, 403, d.message);
  assert.match(d.message, /no cosign signature found/);
});

test('a Sigstore bundle (cosign --new-bundle-format) found through the referrers tag is verified: served; signed with another key: 403', async () => {
  const pulled = await pull('xing/bundled:v1', 'bundled');
  assert.equal(pulled.manifestDigest, images['xing/bundled:v1']!.manifestDigest);
  const digest = pulled.manifestDigest;
  assert.ok(
    (await registry.requests()).some((q) => q.method === 'GET' && q.uri.endsWith(`/v2/xing/bundled/manifests/${digest.replace(':', '-')}`)),
    'berth read the referrers tag sha256-<hex>',
  );
  const other = await denial('xing/bundleother', 'v1');
  assert.equal(other.status, 403, other.message);
  assert.equal(other.code, 'DENIED');
  assert.ok(other.message.includes(images['xing/bundleother:v1']!.manifestDigest), other.message);
  assert.match(other.message, /a Sigstore bundle does not verify with any configured key/);
  const listed = (await api(berth.url, 'GET', '/api/v1/images?q=xing/bundle')).json as Array<{ repository: string; tag: string; signature: string }>;
  const state = (repository: string) => listed.find((i) => i.repository === repository && i.tag === 'v1')?.signature;
  assert.equal(state('xing/bundled'), 'verified', JSON.stringify(listed));
  assert.equal(state('xing/bundleother'), 'invalid', JSON.stringify(listed));
});

test('a simple signing signature attached as a referrer (the referrers tag) is verified', async () => {
  const pulled = await pull('xing/referred:v1', 'referred');
  assert.equal(pulled.manifestDigest, images['xing/referred:v1']!.manifestDigest);
});

test('warm-up of a bundle-signed image brings the referrers tag and the bundle', async () => {
  const r = await berthWarm(['--server', berth.url, 'xing/bundlewarm:v1']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const digest = images['xing/bundlewarm:v1']!.manifestDigest;
  assert.ok(
    (await registry.requests()).some((q) => q.method === 'GET' && q.uri.endsWith(`/v2/xing/bundlewarm/manifests/${digest.replace(':', '-')}`)),
    'berth fetched the referrers tag while warming',
  );
});

test('warn mode serves an unsigned image, logs it once and counts it; unmatched repositories are not checked', async () => {
  const before1 = (await checks())['warned'] ?? 0;
  const pulled = await pull('warn/unsigned:v1', 'warn');
  assert.equal(pulled.manifestDigest, images['warn/unsigned:v1']!.manifestDigest);
  await pull('warn/unsigned:v1', 'warn2');
  assert.ok(((await checks())['warned'] ?? 0) > before1);
  const logged = (await berth.logLines()).filter(
    (l) => l['msg'] === 'serving content without a valid signature (verify: warn)' && l['digest'] === pulled.manifestDigest,
  );
  assert.equal(logged.length, 1, 'one log line per digest');
  const free = await pull('free/unsigned:v1', 'free');
  assert.equal(free.manifestDigest, images['free/unsigned:v1']!.manifestDigest);
});

test('a bundle carries the signatures: a site that enforces, with no upstream reachable, serves the signed images it imported', async () => {
  const bundle = path.join(work, 'signed-bundle');
  const refs = ['xing/signed:v1', 'xing/bundled:v1'];
  const exported = await berthCli(['export', '--from-registry', registry.url, '--output', bundle, ...refs]);
  assert.equal(exported.code, 0, exported.stderr);
  const siteRoot = path.join(work, 'site-store');
  // An upstream nothing answers on: whatever the site serves came on the disk.
  const site = {
    version: 0.1,
    http: { workers: 1 },
    proxy: { remoteurl: 'http://127.0.0.1:1' },
    verify: [{ repositories: ['xing/*'], mode: 'enforce', cosign: { keys: [keys.pub] } }],
  };
  const siteFile = path.join(work, 'site.yml');
  await writeFile(siteFile, stringify({ ...site, storage: { filesystem: { rootdirectory: siteRoot } } }));
  const imported = await berthCli(['import', '--config', siteFile, '-q', bundle]);
  assert.equal(imported.code, 0, imported.stderr);
  const edge = await startBerth({ root: siteRoot, config: site });
  retired.push(edge);
  try {
    for (const ref of refs) {
      const pulled = await skopeoPull(`${edge.host}/${ref}`, path.join(work, `site-${ref.replace(/[/:]/g, '_')}`));
      assert.equal(pulled.manifestDigest, images[ref]!.manifestDigest, `${ref}: served with its signature from the bundle`);
    }
  } finally {
    await edge.kill();
  }
});

test('with the central registry stopped, a restarted berth verifies from its cache: signed served, unsigned and other-key refused', async () => {
  // Held: eviction (here `berth gc` down to almost nothing between the two processes) keeps the signature with the image.
  for (const image of ['xing/bundled:v1', 'xing/signed:v1', 'xing/warmed:v1', 'xing/bundlewarm:v1', 'xing/unsigned:v1', 'xing/otherkey:v1']) {
    const pin = await api(berth.url, 'POST', '/api/v1/pin', { image });
    assert.equal(pin.status, 200, `${image}: ${JSON.stringify(pin.json)}`);
  }
  await registry.down();
  try {
    await berth.kill();
    retired.push(berth);
    const gcConfig = parse(await readFile(berth.configFile, 'utf8')) as { storage?: Record<string, unknown> };
    gcConfig.storage = { ...gcConfig.storage, maxsize: '1KiB', lowwatermark: 0.5 };
    const gcFile = path.join(work, 'gc.yml');
    await writeFile(gcFile, stringify(gcConfig));
    const gc = await run(process.execPath, [BERTH_BIN, 'gc', '--config', gcFile], { timeoutMs: 60_000 });
    assert.match(gc.stdout, /evicted [1-9]\d* blobs/);
    berth = await startBerth(config(berth.root));
    const listed = (await api(berth.url, 'GET', '/api/v1/images?q=xing/bundled:v1')).json as Array<{ signature: string }>;
    assert.equal(listed[0]?.signature, 'verified', 'the signature the store records, before this process checked anything');
    const bundled = await pull('xing/bundled:v1', 'offline-bundled');
    assert.equal(bundled.manifestDigest, images['xing/bundled:v1']!.manifestDigest, 'the pinned image kept its bundle through gc');
    const pulled = await pull('xing/signed:v1', 'offline-signed');
    assert.equal(pulled.manifestDigest, images['xing/signed:v1']!.manifestDigest);
    for (const ref of ['xing/warmed:v1', 'xing/bundlewarm:v1']) {
      const warmed = await pull(ref, `offline-${ref.split(/[/:]/)[1]}`);
      assert.equal(warmed.manifestDigest, images[ref]!.manifestDigest, `${ref}: its signature came with the warm-up`);
    }
    const unpinned = await fetch(`${berth.url}/v2/xing/referred/manifests/v1`, { method: 'HEAD' });
    assert.notEqual(unpinned.status, 200, 'gc took the unpinned image');
    const unsigned = await denial('xing/unsigned', 'v1');
    assert.equal(unsigned.status, 403, unsigned.message);
    const other = await denial('xing/otherkey', 'v1');
    // Only a valid signature is kept with its image: gc took this one, and the image stays refused.
    assert.equal(other.status, 403, other.message);
  } finally {
    await registry.up();
  }
});
