/** @module e2e/foreign.test — manifests with non-distributable (foreign) layers: accepted without their bytes, served, pulled through a chained berth. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { OCI_MANIFEST, call, digestOf, uploadBlob } from '../fixtures/oci-http.js';

let plain: Berth;
let edge: Berth;

before(async () => {
  plain = await startBerth({ config: { version: 0.1 } });
  // A site berth whose upstream is the plain berth: the manifest is pulled through.
  edge = await startBerth({ proxy: { remoteurl: plain.url } });
});

after(async () => {
  await edge?.stop();
  await plain?.stop();
});

/** A Windows-style image: a foreign base layer berth never sees, and one ordinary layer. */
async function foreignImage(repo: string, ociForeign: boolean): Promise<{ body: Buffer; digest: string; layer: Buffer }> {
  const layer = Buffer.from(`ordinary layer of ${repo}`);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'windows' }));
  const foreignBytes = Buffer.from(`foreign base layer of ${repo}, only at its urls`);
  await uploadBlob(plain.url, repo, layer);
  await uploadBlob(plain.url, repo, config);
  const foreignType = ociForeign ? 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip' : 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: [
        { mediaType: foreignType, digest: digestOf(foreignBytes), size: foreignBytes.length, urls: ['https://example.invalid/base.tar.gz'] },
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length },
      ],
    }),
  );
  return { body, digest: digestOf(body), layer };
}

for (const ociForeign of [true, false]) {
  const kind = ociForeign ? 'OCI non-distributable' : 'Docker foreign';
  test(`a pushed manifest with a ${kind} layer is accepted without its bytes, served, and pulled through`, async () => {
    const repo = `win/app-${ociForeign ? 'oci' : 'docker'}`;
    const { body, digest, layer } = await foreignImage(repo, ociForeign);
    const put = await call(plain.url, 'PUT', `/v2/${repo}/manifests/v1`, { headers: { 'content-type': OCI_MANIFEST }, body });
    assert.equal(put.status, 201, put.body.toString());
    assert.equal(put.header('docker-content-digest'), digest);

    const got = await call(plain.url, 'GET', `/v2/${repo}/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
    assert.equal(got.status, 200);
    assert.equal(digestOf(got.body), digest);

    const through = await call(edge.url, 'GET', `/v2/${repo}/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
    assert.equal(through.status, 200, through.body.toString());
    assert.equal(digestOf(through.body), digest, 'the chained berth serves the same bytes');
    const blob = await call(edge.url, 'GET', `/v2/${repo}/blobs/${digestOf(layer)}`);
    assert.equal(blob.status, 200);
    assert.equal(digestOf(blob.body), digestOf(layer), 'its ordinary layer pulls through as usual');
  });
}

test('a manifest whose ordinary layer is missing is still refused', async () => {
  const repo = 'win/broken';
  const missing = Buffer.from('never uploaded');
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(missing), size: missing.length },
      layers: [],
    }),
  );
  const put = await call(plain.url, 'PUT', `/v2/${repo}/manifests/v1`, { headers: { 'content-type': OCI_MANIFEST }, body });
  assert.equal(put.status, 400);
  assert.equal(put.json<{ errors: Array<{ code: string }> }>().errors[0]?.code, 'MANIFEST_BLOB_UNKNOWN');
});
