/** @module e2e/signatures.test — the verify: policy with the real signer: cosign signatures made in the central registry, checked by berth online and offline. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, buildIndex, pushImage, type BuiltImage, type BuiltIndex } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull } from '../fixtures/clients.js';
import { generateKeyPair, sign, type CosignKeys } from '../fixtures/cosign.js';
import { makeTempDir, removeDir, sleep } from '../fixtures/proc.js';
import { berthWarm } from '../fixtures/admin.js';
import { VERDICT_TTL_MS } from '../../src/cache/signature-policy.js';

let registry: Registry;
let berth: Berth;
let work: string;
let keys: CosignKeys;
let otherKeys: CosignKeys;
const images: Record<string, BuiltImage | BuiltIndex> = {};
/** Berths stopped for a restart on the same store: their directories go at the end. */
const retired: Berth[] = [];

/** Pushes a fresh one-layer image as `repoTag`; signed with `by` when given. */
async function publish(repoTag: string, by?: CosignKeys, index = false): Promise<BuiltImage | BuiltIndex> {
  const image = index ? await buildIndex({ layers: 1, layerSize: 64 * 1024, tag: 'v1' }) : await buildImage({ layers: 2, layerSize: 64 * 1024, tag: 'v1' });
  const digest = await pushImage(image, registry.url, repoTag);
  if (by) await sign(`${registry.host}/${repoTag.split(':')[0]}@${digest}`, by, work);
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

test('with the central registry stopped, a restarted berth verifies from its cache: signed served, unsigned and other-key refused', async () => {
  await registry.down();
  try {
    await berth.kill();
    retired.push(berth);
    berth = await startBerth(config(berth.root));
    const pulled = await pull('xing/signed:v1', 'offline-signed');
    assert.equal(pulled.manifestDigest, images['xing/signed:v1']!.manifestDigest);
    const warmed = await pull('xing/warmed:v1', 'offline-warmed');
    assert.equal(warmed.manifestDigest, images['xing/warmed:v1']!.manifestDigest, 'its signature came with the warm-up');
    const unsigned = await denial('xing/unsigned', 'v1');
    assert.equal(unsigned.status, 403, unsigned.message);
    const other = await denial('xing/otherkey', 'v1');
    assert.equal(other.status, 403, other.message);
    assert.match(other.message, /does not verify with any configured key/);
  } finally {
    await registry.up();
  }
});
