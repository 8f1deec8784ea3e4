/** @module e2e/soci-referrers.test — a SOCI index found through berth's referrers API when the central registry has no referrers API (the referrers tag schema), its zTOC and the layer's ranges served, and the list kept for offline use. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { OCI_INDEX, OCI_MANIFEST, call, makeManifest, pushManifest, type TestManifest } from '../fixtures/oci-http.js';

const SOCI = 'application/vnd.amazon.soci.index.v1+json';
const REPO = 'xing/lazy';
let registry: Registry;
let berth: Berth;
let image: BuiltImage;
let soci: TestManifest;

before(async () => {
  registry = await startRegistry();
  image = await buildImage({ layers: 1, layerSize: 4 * 1024 * 1024, tag: 'v1' });
  await pushImage(image, registry.url, `${REPO}:v1`);
  // What a SOCI index is to a registry: an artifact manifest whose subject is the image, a zTOC per layer.
  soci = makeManifest(Buffer.from('{}'), [randomBytes(64 * 1024)], {
    artifactType: SOCI,
    subject: { mediaType: image.manifestMediaType, digest: image.manifestDigest, size: image.manifestBytes.length },
    annotations: { 'com.amazon.soci.image-layer-digest': image.layers[0]!.digest },
  });
  const pushed = await pushManifest(registry.url, REPO, soci, soci.digest);
  assert.equal(pushed.status, 201, pushed.body.toString());
  // A registry without the referrers API: pushing clients keep the list under the tag schema's tag.
  const list = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: soci.digest, size: soci.bytes.length, artifactType: SOCI }],
    }),
  );
  const tag = `sha256-${image.manifestDigest.slice(7)}`;
  const put = await call(registry.url, 'PUT', `/v2/${REPO}/manifests/${tag}`, { body: list, headers: { 'content-type': OCI_INDEX } });
  assert.equal(put.status, 201, put.body.toString());
  berth = await startBerth({ proxy: { remoteurl: registry.url } });
});

after(async () => {
  await berth?.stop();
  await registry?.stop();
  await image?.remove();
});

const referrers = async (artifactType?: string) => {
  const q = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
  const r = await call(berth.url, 'GET', `/v2/${REPO}/referrers/${image.manifestDigest}${q}`);
  assert.equal(r.status, 200, r.body.toString());
  return r.json<{ manifests: Array<{ digest: string; artifactType?: string }> }>().manifests;
};

test('the central registry has no referrers API; through berth the SOCI index is listed, its zTOC served, the layer ranged', async () => {
  const direct = await call(registry.url, 'GET', `/v2/${REPO}/referrers/${image.manifestDigest}`);
  assert.equal(direct.status, 404, 'the registry itself does not answer the referrers API');

  const listed = await referrers(SOCI);
  assert.deepEqual(
    listed.map((m) => [m.digest, m.artifactType]),
    [[soci.digest, SOCI]],
  );
  assert.deepEqual(await referrers('application/vnd.dev.cosign.artifact.sig.v1+json'), [], 'filtered by artifactType');

  const manifest = await call(berth.url, 'GET', `/v2/${REPO}/manifests/${soci.digest}`, { headers: { accept: OCI_MANIFEST } });
  assert.equal(manifest.status, 200);
  assert.ok(manifest.body.equals(soci.bytes));
  const ztoc = await call(berth.url, 'GET', `/v2/${REPO}/blobs/${soci.layers[0]!.digest}`);
  assert.ok(ztoc.body.equals(soci.layers[0]!.data), 'the zTOC byte for byte');

  const layer = image.layers[0]!;
  const tail = await call(berth.url, 'GET', `/v2/${REPO}/blobs/${layer.digest}`, { headers: { range: 'bytes=-4096' } });
  assert.equal(tail.status, 206);
  assert.equal(tail.header('content-range'), `bytes ${layer.size - 4096}-${layer.size - 1}/${layer.size}`);
  assert.equal(tail.body.length, 4096);
});

test('with the registry stopped, the SOCI index berth has served is still listed and served', async () => {
  await registry.stop();
  const listed = await referrers(SOCI);
  assert.deepEqual(
    listed.map((m) => m.digest),
    [soci.digest],
  );
  const manifest = await call(berth.url, 'GET', `/v2/${REPO}/manifests/${soci.digest}`, { headers: { accept: OCI_MANIFEST } });
  assert.equal(manifest.status, 200);
  assert.ok(manifest.body.equals(soci.bytes));
});
