/** @module e2e/conformance.test — the OCI distribution-spec conformance checks against berth as a plain registry (no upstream). */
/*
 * How this maps to the upstream suite (github.com/opencontainers/distribution-spec, conformance/):
 * its Ginkgo suite of release v1.1 has four workflows, 01_pull_test.go, 02_push_test.go,
 * 03_discovery_test.go and 04_management_test.go; the rewritten suite on its main branch checks
 * the same workflows with sha256 and sha512 content. The suite is a Go program whose sources and
 * Go modules the test machines cannot download, so each check it makes (as summarised in the
 * project's conformance notes) is made here the same way, over raw HTTP:
 * the "push" tests below are 02_push_test.go (monolithic, streamed and chunked uploads, out of
 * order and stale chunks, cancel, cross-repository mount, manifest PUT by tag and digest,
 * OCI-Subject, digest mismatch), "pull" is 01_pull_test.go run on what was pushed (sha512
 * content included), "discovery" is 03_discovery_test.go (tags with n/last/Link, referrers
 * with artifactType filtering), "management" is 04_management_test.go (DELETE of manifests by
 * digest and tag, of blobs, and the tag list shrinking), plus the catalog.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { OCI_INDEX, OCI_MANIFEST, assertError, call, digestOf, makeManifest, pushManifest, uploadBlob } from '../fixtures/oci-http.js';

let berth: Berth;
let base: string;
const repo = 'conformance/push';

before(async () => {
  berth = await startBerth({ config: { version: 0.1, storage: { delete: { enabled: true } } } });
  base = berth.url;
});

after(async () => {
  await berth?.stop();
});

test('push: POST then PUT with the body; monolithic POST ?digest=; every Location serves the bytes', async () => {
  const data = randomBytes(4096);
  const digest = digestOf(data);
  const start = await call(base, 'POST', `/v2/${repo}/blobs/uploads/`);
  assert.equal(start.status, 202);
  assert.ok(start.header('location'));
  const put = await call(base, 'PUT', `${start.header('location')}?digest=${digest}`, { body: data });
  assert.equal(put.status, 201);
  assert.equal(put.header('location'), `/v2/${repo}/blobs/${digest}`);
  assert.ok((await call(base, 'GET', put.header('location')!)).body.equals(data));

  const mono = randomBytes(1000);
  const monoDigest = digestOf(mono);
  const created = await call(base, 'POST', `/v2/${repo}/blobs/uploads/?digest=${monoDigest}`, {
    body: mono,
    headers: { 'content-type': 'application/octet-stream' },
  });
  assert.equal(created.status, 201);
  const got = await call(base, 'GET', created.header('location')!);
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(mono));
});

test('push: streamed PATCH without Content-Range, then PUT ?digest=', async () => {
  const data = randomBytes(300_000);
  const start = await call(base, 'POST', `/v2/${repo}/blobs/uploads/`);
  const patch = await call(base, 'PATCH', start.header('location')!, { body: data, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(patch.status, 202);
  assert.equal(patch.header('range'), `0-${data.length - 1}`);
  const put = await call(base, 'PUT', `${patch.header('location')}?digest=${digestOf(data)}`);
  assert.equal(put.status, 201);
  assert.ok((await call(base, 'GET', put.header('location')!)).body.equals(data));
});

test('push: chunked upload with ranges, out-of-order and stale chunks refused with 416, status GET, final PUT', async () => {
  const chunk1 = randomBytes(22);
  const chunk2 = randomBytes(20);
  const all = Buffer.concat([chunk1, chunk2]);
  const start = await call(base, 'POST', `/v2/${repo}/blobs/uploads/`, { headers: { 'content-length': '0' } });
  assert.equal(start.status, 202);
  const first = await call(base, 'PATCH', start.header('location')!, {
    body: chunk1,
    headers: { 'content-range': '0-21', 'content-type': 'application/octet-stream' },
  });
  assert.equal(first.status, 202);
  assert.equal(first.header('range'), '0-21');
  const outOfOrder = await call(base, 'PATCH', first.header('location')!, { body: chunk2, headers: { 'content-range': '30-49' } });
  assertError(outOfOrder, 416, 'RANGE_INVALID');
  const stale = await call(base, 'PATCH', start.header('location')!, { body: chunk1, headers: { 'content-range': '0-21' } });
  assert.equal(stale.status, 416);
  const status = await call(base, 'GET', first.header('location')!);
  assert.equal(status.status, 204);
  assert.equal(status.header('range'), '0-21');
  assert.ok(status.header('location'));
  const second = await call(base, 'PATCH', status.header('location')!, { body: chunk2, headers: { 'content-range': '22-41' } });
  assert.equal(second.status, 202);
  assert.equal(second.header('range'), '0-41');
  const done = await call(base, 'PUT', `${second.header('location')}?digest=${digestOf(all)}`);
  assert.equal(done.status, 201);
  assert.ok((await call(base, 'GET', done.header('location')!)).body.equals(all));

  // The last chunk may travel with the PUT.
  const again = await call(base, 'POST', `/v2/${repo}/blobs/uploads/`);
  await call(base, 'PATCH', again.header('location')!, { body: chunk2, headers: { 'content-range': '0-19' } });
  const last = await call(base, 'PUT', `${again.header('location')}?digest=${digestOf(Buffer.concat([chunk2, chunk1]))}`, {
    body: chunk1,
    headers: { 'content-range': '20-41' },
  });
  assert.equal(last.status, 201);
});

test('push: a wrong digest is refused and nothing is stored; a bad Content-Length is refused', async () => {
  const data = randomBytes(1000);
  const wrong = digestOf(randomBytes(10));
  const start = await call(base, 'POST', `/v2/${repo}/blobs/uploads/`);
  const put = await call(base, 'PUT', `${start.header('location')}?digest=${wrong}`, { body: data });
  assertError(put, 400, 'DIGEST_INVALID');
  assert.equal((await call(base, 'HEAD', `/v2/${repo}/blobs/${wrong}`)).status, 404);
  assertError(await call(base, 'GET', start.header('location')!), 404, 'BLOB_UPLOAD_UNKNOWN');
  const next = await call(base, 'POST', `/v2/${repo}/blobs/uploads/`);
  const mismatch = await call(base, 'PATCH', next.header('location')!, { body: data, headers: { 'content-range': '0-9' } });
  assert.equal(mismatch.status, 416);
  const malformed = await call(base, 'PUT', `${next.header('location')}?digest=sha256:totallywrong`, { body: data });
  assertError(malformed, 400, 'DIGEST_INVALID');
});

test('push: DELETE of an upload URL cancels it', async () => {
  const start = await call(base, 'POST', `/v2/${repo}/blobs/uploads/`);
  await call(base, 'PATCH', start.header('location')!, { body: randomBytes(100) });
  assert.equal((await call(base, 'DELETE', start.header('location')!)).status, 204);
  assertError(await call(base, 'GET', start.header('location')!), 404, 'BLOB_UPLOAD_UNKNOWN');
  assertError(await call(base, 'DELETE', start.header('location')!), 404, 'BLOB_UPLOAD_UNKNOWN');
});

test('push: cross-repository mount gives 201 with the blob Location; a missing blob gives 202 and an upload', async () => {
  const data = randomBytes(2048);
  const digest = await uploadBlob(base, repo, data);
  assert.equal((await call(base, 'HEAD', `/v2/conformance/other/blobs/${digest}`)).status, 404);
  const mount = await call(base, 'POST', `/v2/conformance/other/blobs/uploads/?mount=${digest}&from=${repo}`);
  assert.equal(mount.status, 201);
  assert.equal(mount.header('location'), `/v2/conformance/other/blobs/${digest}`);
  assert.ok((await call(base, 'GET', mount.header('location')!)).body.equals(data));
  const missing = await call(base, 'POST', `/v2/conformance/other/blobs/uploads/?mount=${digestOf(randomBytes(8))}&from=${repo}`);
  assert.equal(missing.status, 202);
  assert.match(missing.header('location')!, /\/blobs\/uploads\//);
});

test('push + pull: manifests by tag and digest; OCI-Subject; digest mismatch and missing blobs refused; pulled back exactly', async () => {
  const image = makeManifest(Buffer.from('{"architecture":"amd64","os":"linux"}'), [randomBytes(5000), randomBytes(3000)]);
  const byTag = await pushManifest(base, repo, image, 'v1');
  assert.equal(byTag.status, 201, byTag.body.toString());
  assert.equal(byTag.header('location'), `/v2/${repo}/manifests/${image.digest}`);
  assert.equal(byTag.header('docker-content-digest'), image.digest);
  const byDigest = await call(base, 'PUT', `/v2/${repo}/manifests/${image.digest}`, { body: image.bytes, headers: { 'content-type': OCI_MANIFEST } });
  assert.equal(byDigest.status, 201);

  for (const ref of ['v1', image.digest]) {
    for (const method of ['HEAD', 'GET']) {
      const r = await call(base, method, `/v2/${repo}/manifests/${ref}`, { headers: { accept: OCI_MANIFEST } });
      assert.equal(r.status, 200);
      assert.equal(r.header('docker-content-digest'), image.digest);
      assert.equal(r.header('content-type'), OCI_MANIFEST);
      assert.equal(Number(r.header('content-length')), image.bytes.length);
      if (method === 'GET') assert.ok(r.body.equals(image.bytes));
    }
  }
  const layer = image.layers[0]!;
  const ranged = await call(base, 'GET', `/v2/${repo}/blobs/${layer.digest}`, { headers: { range: 'bytes=500-1499' } });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.header('content-range'), `bytes 500-1499/${layer.size}`);
  assert.ok(ranged.body.equals(layer.data.subarray(500, 1500)));
  assert.equal((await call(base, 'GET', `/v2/${repo}/manifests/.INVALID_MANIFEST_NAME`)).status, 404);
  assert.equal((await call(base, 'GET', `/v2/${repo}/blobs/sha256:totallywrong`)).status, 400);

  const other = makeManifest(Buffer.from('{"other":true}'), []);
  const mismatch = await call(base, 'PUT', `/v2/${repo}/manifests/${image.digest}`, { body: other.bytes, headers: { 'content-type': OCI_MANIFEST } });
  assertError(mismatch, 400, 'DIGEST_INVALID');
  const dangling = makeManifest(Buffer.from('{"dangling":true}'), [randomBytes(100)]);
  const refused = await call(base, 'PUT', `/v2/${repo}/manifests/dangling`, { body: dangling.bytes, headers: { 'content-type': OCI_MANIFEST } });
  assertError(refused, 400, 'MANIFEST_BLOB_UNKNOWN');
  assert.match(refused.body.toString(), new RegExp(dangling.config.digest));
  assert.equal((await call(base, 'GET', `/v2/${repo}/manifests/dangling`)).status, 404);

  // A subject that is not pushed (yet) is fine; the header names it.
  const subject = { mediaType: OCI_MANIFEST, digest: digestOf(Buffer.from('not pushed')), size: 10 };
  const sbom = makeManifest(Buffer.from('{}'), [randomBytes(64)], { subject, artifactType: 'application/spdx+json' });
  const referrer = await pushManifest(base, repo, sbom, sbom.digest);
  assert.equal(referrer.status, 201);
  assert.equal(referrer.header('oci-subject'), subject.digest);
});

test('pull: sha512 blobs and manifests are stored and served with sha512 digests', async () => {
  const data = randomBytes(7000);
  const digest = await uploadBlob(base, repo, data, 'sha512');
  assert.match(digest, /^sha512:/);
  const head = await call(base, 'HEAD', `/v2/${repo}/blobs/${digest}`);
  assert.equal(head.status, 200);
  assert.equal(head.header('docker-content-digest'), digest);
  const config = Buffer.from('{"sha512":true}');
  const configDigest = await uploadBlob(base, repo, config, 'sha512');
  const doc = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: data.length }],
    }),
  );
  const manifestDigest = digestOf(doc, 'sha512');
  const put = await call(base, 'PUT', `/v2/${repo}/manifests/${manifestDigest}`, { body: doc, headers: { 'content-type': OCI_MANIFEST } });
  assert.equal(put.status, 201, put.body.toString());
  const get = await call(base, 'GET', `/v2/${repo}/manifests/${manifestDigest}`);
  assert.equal(get.header('docker-content-digest'), manifestDigest);
  assert.ok(get.body.equals(doc));
});

test('push: a manifest PUT by digest with ?tag= parameters sets each tag and names them in OCI-Tag, sha512 content included', async () => {
  const image = makeManifest(Buffer.from('{"tagparams":1}'), [randomBytes(12)]);
  for (const b of [image.config, ...image.layers]) await uploadBlob(base, 'conformance/tagparams', b.data);
  const put = await call(base, 'PUT', `/v2/conformance/tagparams/manifests/${image.digest}?tag=v1&tag=v1.2&tag=latest`, {
    body: image.bytes,
    headers: { 'content-type': OCI_MANIFEST },
  });
  assert.equal(put.status, 201, put.body.toString());
  const named = String(put.header('oci-tag') ?? '')
    .split(',')
    .map((t) => t.trim());
  assert.deepEqual(named.sort(), ['latest', 'v1', 'v1.2']);
  for (const tag of ['v1', 'v1.2', 'latest']) {
    const get = await call(base, 'GET', `/v2/conformance/tagparams/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
    assert.equal(get.status, 200);
    assert.ok(get.body.equals(image.bytes));
  }
  // A digest that is not sha256 can be tagged only this way: the tag must point at that digest.
  const doc = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
  const d512 = digestOf(doc, 'sha512');
  const put512 = await call(base, 'PUT', `/v2/conformance/tagparams/manifests/${d512}?tag=index512`, { body: doc, headers: { 'content-type': OCI_INDEX } });
  assert.equal(put512.status, 201, put512.body.toString());
  assert.equal(put512.header('oci-tag'), 'index512');
  const head = await call(base, 'HEAD', '/v2/conformance/tagparams/manifests/index512', { headers: { accept: OCI_INDEX } });
  assert.equal(head.header('docker-content-digest'), d512);
  const bad = await call(base, 'PUT', `/v2/conformance/tagparams/manifests/${image.digest}?tag=${encodeURIComponent('-bad tag')}`, {
    body: image.bytes,
    headers: { 'content-type': OCI_MANIFEST },
  });
  assertError(bad, 400, 'MANIFEST_INVALID');
});

test('discovery: tags sorted, paged with n and last and a Link to the next page', async () => {
  const image = makeManifest(Buffer.from('{"tags":1}'), [randomBytes(10)]);
  const tags = ['b', 'A', 'a', 'c1', 'c0', 'Z'];
  for (const t of tags) assert.equal((await pushManifest(base, 'conformance/tags', image, t)).status, 201);
  const sorted = [...tags].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  const all = await call(base, 'GET', '/v2/conformance/tags/tags/list');
  assert.deepEqual(all.json(), { name: 'conformance/tags', tags: sorted });
  const page = await call(base, 'GET', '/v2/conformance/tags/tags/list?n=2');
  assert.deepEqual(page.json<{ tags: string[] }>().tags, sorted.slice(0, 2));
  assert.match(page.header('link')!, /rel="next"/);
  const next = await call(base, 'GET', `/v2/conformance/tags/tags/list?n=3&last=${sorted[1]}`);
  assert.deepEqual(next.json<{ tags: string[] }>().tags, sorted.slice(2, 5));
  assert.equal((await call(base, 'GET', '/v2/conformance/tags/tags/list?n=0')).json<{ tags: string[] }>().tags.length, 0);
});

test('discovery: referrers list manifests and indexes with that subject, filtered by artifactType', async () => {
  const r = 'conformance/referrers';
  const subjectImage = makeManifest(Buffer.from('{"subject":1}'), [randomBytes(100)]);
  assert.equal((await pushManifest(base, r, subjectImage, 'v1')).status, 201);
  const subject = { mediaType: OCI_MANIFEST, digest: subjectImage.digest, size: subjectImage.bytes.length };
  const sig = makeManifest(Buffer.from('{}'), [randomBytes(32)], {
    subject,
    artifactType: 'application/vnd.example.signature',
    annotations: { 'org.example.kind': 'signature' },
  });
  const sbom = makeManifest(Buffer.from('{"sbom":1}'), [randomBytes(32)], { subject, artifactType: 'application/spdx+json' });
  for (const m of [sig, sbom]) assert.equal((await pushManifest(base, r, m, m.digest)).status, 201);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      artifactType: 'application/vnd.example.bundle',
      manifests: [{ mediaType: OCI_MANIFEST, digest: sig.digest, size: sig.bytes.length }],
      subject,
    }),
  );
  const putIndex = await call(base, 'PUT', `/v2/${r}/manifests/${digestOf(index)}`, { body: index, headers: { 'content-type': OCI_INDEX } });
  assert.equal(putIndex.status, 201, putIndex.body.toString());
  assert.equal(putIndex.header('oci-subject'), subject.digest);

  const list = await call(base, 'GET', `/v2/${r}/referrers/${subject.digest}`);
  assert.equal(list.status, 200);
  assert.equal(list.header('content-type'), OCI_INDEX);
  const body = list.json<{ schemaVersion: number; mediaType: string; manifests: Array<Record<string, unknown>> }>();
  assert.equal(body.mediaType, OCI_INDEX);
  assert.deepEqual(body.manifests.map((d) => d['digest']).sort(), [sig.digest, sbom.digest, digestOf(index)].sort());
  const sigDesc = body.manifests.find((d) => d['digest'] === sig.digest)!;
  assert.deepEqual(sigDesc, {
    mediaType: OCI_MANIFEST,
    digest: sig.digest,
    size: sig.bytes.length,
    artifactType: 'application/vnd.example.signature',
    annotations: { 'org.example.kind': 'signature' },
  });

  const filtered = await call(base, 'GET', `/v2/${r}/referrers/${subject.digest}?artifactType=${encodeURIComponent('application/spdx+json')}`);
  assert.equal(filtered.header('oci-filters-applied'), 'artifactType');
  assert.deepEqual(
    filtered.json<{ manifests: Array<{ digest: string }> }>().manifests.map((d) => d.digest),
    [sbom.digest],
  );
  const none = await call(base, 'GET', `/v2/${r}/referrers/${digestOf(Buffer.from('nothing refers to me'))}`);
  assert.equal(none.status, 200);
  assert.deepEqual(none.json<{ manifests: unknown[] }>().manifests, []);
  assert.equal((await call(base, 'GET', `/v2/${r}/referrers/sha256:totallywrong`)).status, 400);
});

test('management: DELETE manifests by tag and digest and blobs; gone at once; the tag list shrinks; catalog', async () => {
  const r = 'conformance/delete';
  const image = makeManifest(Buffer.from('{"delete":1}'), [randomBytes(4000)]);
  for (const t of ['keep', 'drop']) assert.equal((await pushManifest(base, r, image, t)).status, 201);
  const catalog = await call(base, 'GET', '/v2/_catalog');
  assert.ok(catalog.json<{ repositories: string[] }>().repositories.includes(r));

  assert.equal((await call(base, 'DELETE', `/v2/${r}/manifests/drop`)).status, 202);
  assert.deepEqual((await call(base, 'GET', `/v2/${r}/tags/list`)).json<{ tags: string[] }>().tags, ['keep']);
  assert.equal((await call(base, 'GET', `/v2/${r}/manifests/keep`)).status, 200);

  assert.equal((await call(base, 'DELETE', `/v2/${r}/manifests/${image.digest}`)).status, 202);
  for (const ref of [image.digest, 'keep']) {
    assert.equal((await call(base, 'GET', `/v2/${r}/manifests/${ref}`)).status, 404);
    assert.equal((await call(base, 'HEAD', `/v2/${r}/manifests/${ref}`)).status, 404);
  }
  assertError(await call(base, 'DELETE', `/v2/${r}/manifests/${image.digest}`), 404, 'MANIFEST_UNKNOWN');

  const layer = image.layers[0]!.digest;
  assert.equal((await call(base, 'DELETE', `/v2/${r}/blobs/${layer}`)).status, 202);
  assert.equal((await call(base, 'GET', `/v2/${r}/blobs/${layer}`)).status, 404);
  assert.equal((await call(base, 'HEAD', `/v2/${r}/blobs/${layer}`)).status, 404);
  assertError(await call(base, 'DELETE', `/v2/${r}/blobs/${layer}`), 404, 'BLOB_UNKNOWN');
  assert.ok(!(await call(base, 'GET', '/v2/_catalog')).json<{ repositories: string[] }>().repositories.includes(r));
});

test('management: with storage.delete.enabled off, DELETE answers 405 UNSUPPORTED naming the setting', async () => {
  const strict = await startBerth({ config: { version: 0.1 } });
  try {
    const image = makeManifest(Buffer.from('{"nodelete":1}'), [randomBytes(10)]);
    assert.equal((await pushManifest(strict.url, 'x/y', image, 'v1')).status, 201);
    const del = await call(strict.url, 'DELETE', `/v2/x/y/manifests/${image.digest}`);
    assertError(del, 405, 'UNSUPPORTED');
    assert.match(del.body.toString(), /storage\.delete\.enabled/);
    assertError(await call(strict.url, 'DELETE', `/v2/x/y/blobs/${image.layers[0]!.digest}`), 405, 'UNSUPPORTED');
    assert.equal((await call(strict.url, 'GET', `/v2/x/y/manifests/v1`)).status, 200);
  } finally {
    await strict.stop();
  }
});
