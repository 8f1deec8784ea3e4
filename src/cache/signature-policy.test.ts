/** @module cache/signature-policy.test — the verify: policy over a real store: signed, unsigned, another key, blobs, indexes, warn, eviction keeping signatures. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { pino } from 'pino';
import { OCI_MANIFEST } from '../oci/mediatypes.js';
import { OciError } from '../oci/errors.js';
import type { VerifyRule } from '../config/verify.js';
import type { Target } from '../upstream/target.js';
import { RegistryCache } from './registry.js';
import { SIGNATURE_ANNOTATION, SIMPLE_SIGNING, signatureTag } from './cosign.js';
import { testStore, type Stored } from './cache-testkit.js';

let store: Awaited<ReturnType<typeof testStore>>;
const mine = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const theirs = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const checked: string[] = [];

before(async () => {
  store = await testStore();
});
after(() => store.remove());

const target = (repository: string): Target => ({ upstream: undefined, key: '', repository });

function cacheWith(rules: VerifyRule[], lowwatermark = 0.8): RegistryCache {
  return new RegistryCache({
    blobs: store.blobs,
    index: store.ports.index,
    repos: store.ports.repos,
    graph: store.ports.repos,
    upstreams: [],
    logger: pino({ level: 'silent' }),
    now: Date.now,
    limits: { maxsize: 0, lowwatermark, ttlByUpstream: new Map() },
    observer: { upstreamBytes: () => undefined, evicted: () => undefined, signatureChecked: (r) => checked.push(r) },
    verify: rules,
  });
}

const rule = (mode: VerifyRule['mode'] = 'enforce'): VerifyRule => ({ repositories: ['x/*'], mode, keys: [{ file: 'cosign.pub', key: mine.publicKey }] });

/** Stores a cosign signature of `digest` under repo's `.sig` tag, signed with `by`. */
async function signStored(repo: string, digest: string, by: typeof mine): Promise<{ manifest: Stored; payload: Stored }> {
  const body = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': `registry.example/${repo}` },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
    }),
  );
  const payload = await store.put(body);
  const config = await store.put('{}');
  const sig = sign('sha256', body, by.privateKey).toString('base64');
  const manifestBody = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: SIMPLE_SIGNING, ...payload, annotations: { [SIGNATURE_ANNOTATION]: sig } }],
  });
  const manifest = await store.put(manifestBody);
  store.metadata.putManifest('', repo, { digest: manifest.digest, mediaType: OCI_MANIFEST, size: manifest.size, children: [config.digest, payload.digest] });
  store.metadata.setTag('', repo, signatureTag(digest), manifest.digest);
  return { manifest, payload };
}

async function image(repo: string, seed: string): Promise<{ manifest: Stored; layer: Stored }> {
  const layer = await store.put(`layer of ${repo} ${seed}`);
  const manifest = await store.manifest(repo, { os: 'linux', architecture: 'amd64', seed }, [layer]);
  return { manifest, layer };
}

const denied = (pattern: RegExp) => (e: unknown) => e instanceof OciError && e.status === 403 && e.code === 'DENIED' && pattern.test(e.message);

test('signed: manifest and blobs served; unsigned: manifest and its blobs refused, naming repository and digest', async () => {
  const cache = cacheWith([rule()]);
  const signed = await image('x/signed', '1');
  await signStored('x/signed', signed.manifest.digest, mine);
  const m = await cache.manifest(target('x/signed'), { kind: 'digest', digest: signed.manifest.digest });
  assert.equal(m.digest, signed.manifest.digest);
  await (await cache.blob(target('x/signed'), signed.layer.digest)).close();

  const unsigned = await image('x/unsigned', '2');
  await assert.rejects(
    cache.manifest(target('x/unsigned'), { kind: 'digest', digest: unsigned.manifest.digest }),
    denied(new RegExp(`repository x/unsigned: manifest ${unsigned.manifest.digest} has no valid signature: no cosign signature found`)),
  );
  await assert.rejects(cache.headBlob(target('x/unsigned'), unsigned.layer.digest), denied(/no manifest of the repository that references it/));
  assert.ok(checked.includes('valid') && checked.includes('denied'));
});

test('a signature by another key is refused; warn mode serves it; off and unmatched repositories are not checked', async () => {
  const img = await image('x/other', '3');
  await signStored('x/other', img.manifest.digest, theirs);
  const ref = { kind: 'digest', digest: img.manifest.digest } as const;
  await assert.rejects(cacheWith([rule()]).manifest(target('x/other'), ref), denied(/does not verify with any configured key \(cosign\.pub\)/));
  const before1 = checked.filter((c) => c === 'warned').length;
  await cacheWith([rule('warn')]).manifest(target('x/other'), ref);
  assert.equal(checked.filter((c) => c === 'warned').length, before1 + 1);
  await cacheWith([{ ...rule('off') }, rule()]).manifest(target('x/other'), ref);
  const free = await image('y/free', '4');
  await cacheWith([rule()]).manifest(target('y/free'), { kind: 'digest', digest: free.manifest.digest });
});

test('a platform manifest passes through a signed index of its repository; the .sig manifest itself is served', async () => {
  const cache = cacheWith([rule()]);
  const child = await image('x/multi', '5');
  const idx = await store.index('x/multi', [{ ...child.manifest, platform: { os: 'linux', architecture: 'amd64' } }]);
  await assert.rejects(cache.manifest(target('x/multi'), { kind: 'digest', digest: child.manifest.digest }), denied(/no cosign signature found/));
  const sig = await signStored('x/multi', idx.digest, mine);
  const fresh = cacheWith([rule()]);
  await fresh.manifest(target('x/multi'), { kind: 'digest', digest: idx.digest });
  await fresh.manifest(target('x/multi'), { kind: 'digest', digest: child.manifest.digest });
  await (await fresh.blob(target('x/multi'), child.layer.digest)).close();
  await fresh.manifest(target('x/multi'), { kind: 'digest', digest: sig.manifest.digest });
});

test('eviction keeps the signature of a pinned, verified image, also in a restarted process, and takes what nothing holds', async () => {
  const cache = cacheWith([rule()], 0.0001);
  const held = await image('x/held', '6');
  const sig = await signStored('x/held', held.manifest.digest, mine);
  await store.ports.index.setPinned(held.manifest.digest, true);
  const loose = await image('z/loose', '7');
  await cache.manifest(target('x/held'), { kind: 'digest', digest: held.manifest.digest });
  // A new cache over the same store knows nothing in memory: the link comes from metadata.db.
  await cacheWith([rule()], 0.0001).diskFull();
  for (const d of [held.manifest.digest, held.layer.digest, sig.manifest.digest, sig.payload.digest]) {
    assert.notEqual(await store.blobs.size(d), undefined, `${d} kept`);
  }
  assert.equal(await store.blobs.size(loose.layer.digest), undefined, 'an unpinned image is evicted');
});
