/** @module e2e/api.test — the pull side of the OCI distribution API as the conformance suite checks it, through berth. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, buildIndex, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { ACCEPT_ALL } from '../fixtures/http-pull.js';

let registry: Registry;
let berth: Berth;
let image: BuiltImage;
const tags = ['v1', 'v2', 'alpha', 'beta', 'Zeta'];

before(async () => {
  registry = await startRegistry({ auth: 'none' });
  image = await buildImage({ layers: 1, layerSize: 64 * 1024, tag: 'v1' });
  for (const t of tags) await pushImage(image, registry.url, `conf/repo:${t}`);
  berth = await startBerth({ proxy: { remoteurl: registry.url } });
});

after(async () => {
  await berth?.stop();
  await registry?.stop();
  await image?.remove();
});

async function call(method: string, path: string, headers: Record<string, string> = {}) {
  const res = await request(`${berth.url}${path}`, { method: method as 'GET', headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, json: () => JSON.parse(body.toString()) as Record<string, unknown> };
}

function assertEnvelope(r: { body: Buffer; headers: Record<string, unknown> }, code: string) {
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const errors = (JSON.parse(r.body.toString()) as { errors: Array<{ code: string; message: string }> }).errors;
  assert.equal(errors[0]?.code, code, r.body.toString());
  assert.ok(errors[0].message.length > 0);
}

test('GET /v2/ answers 200 with the API version header', async () => {
  const r = await call('GET', '/v2/');
  assert.equal(r.status, 200);
  assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
});

test('manifests by tag and digest: GET and HEAD with exact digest, type and length', async () => {
  for (const ref of ['v1', image.manifestDigest]) {
    for (const method of ['GET', 'HEAD']) {
      const r = await call(method, `/v2/conf/repo/manifests/${ref}`, { accept: ACCEPT_ALL });
      assert.equal(r.status, 200);
      assert.equal(r.headers['docker-content-digest'], image.manifestDigest);
      assert.equal(r.headers['content-type'], image.manifestMediaType);
      assert.equal(Number(r.headers['content-length']), image.manifestBytes.length);
      if (method === 'GET') assert.ok(r.body.equals(image.manifestBytes));
    }
  }
  const cached = await call('GET', '/v2/conf/repo/manifests/v1', { 'if-none-match': `"${image.manifestDigest}"` });
  assert.equal(cached.status, 304);
});

test('content negotiation: an index is resolved to linux/amd64 for a client that cannot read indexes', async () => {
  const index = await buildIndex({ layers: 1, layerSize: 4096, tag: 'multi' });
  try {
    await pushImage(index, registry.url, 'conf/multi:v1');
    const full = await call('GET', '/v2/conf/multi/manifests/v1', { accept: ACCEPT_ALL });
    assert.equal(full.headers['docker-content-digest'], index.manifestDigest);
    const entries = (index.manifest as { manifests: Array<{ digest: string; platform: { architecture: string } }> }).manifests;
    const amd64 = { manifestDigest: entries.find((e) => e.platform.architecture === 'amd64')!.digest };
    const narrow = await call('GET', '/v2/conf/multi/manifests/v1', { accept: 'application/vnd.oci.image.manifest.v1+json' });
    assert.equal(narrow.status, 200);
    assert.equal(narrow.headers['docker-content-digest'], amd64.manifestDigest);
    const refused = await call('GET', '/v2/conf/repo/manifests/v1', { accept: 'application/vnd.docker.distribution.manifest.list.v2+json' });
    assert.equal(refused.status, 404);
    assertEnvelope(refused, 'MANIFEST_UNKNOWN');
    const byDigest = await call('GET', `/v2/conf/multi/manifests/${index.manifestDigest}`, { accept: 'application/vnd.oci.image.manifest.v1+json' });
    assert.equal(byDigest.headers['docker-content-digest'], index.manifestDigest, 'a digest is served as stored');
  } finally {
    await index.remove();
  }
});

test('Docker schema 2 manifests are served with their own media type, by tag and digest', async () => {
  const docker = await buildImage({ layers: 1, layerSize: 8192, tag: 'docker', format: 'docker' });
  try {
    await pushImage(docker, registry.url, 'conf/docker:v1');
    for (const ref of ['v1', docker.manifestDigest]) {
      const r = await call('GET', `/v2/conf/docker/manifests/${ref}`, { accept: 'application/vnd.docker.distribution.manifest.v2+json' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/vnd.docker.distribution.manifest.v2+json');
      assert.equal(r.headers['docker-content-digest'], docker.manifestDigest);
      assert.ok(r.body.equals(docker.manifestBytes));
    }
  } finally {
    await docker.remove();
  }
});

test('invalid references, names and digests get the spec error codes, never 500', async () => {
  const invalidTag = await call('GET', '/v2/conf/repo/manifests/.INVALID_MANIFEST_NAME');
  assert.equal(invalidTag.status, 404);
  assertEnvelope(invalidTag, 'MANIFEST_UNKNOWN');
  const badDigest = await call('GET', '/v2/conf/repo/blobs/sha256:totallywrong');
  assert.equal(badDigest.status, 400);
  assertEnvelope(badDigest, 'DIGEST_INVALID');
  const badName = await call('GET', '/v2/Conf/../repo/manifests/v1');
  assert.ok(badName.status === 400 || badName.status === 404);
  const missing = await call('GET', `/v2/conf/repo/blobs/sha256:${'0'.repeat(64)}`);
  assert.equal(missing.status, 404);
  assertEnvelope(missing, 'BLOB_UNKNOWN');
  const missingHead = await call('HEAD', `/v2/conf/repo/blobs/sha256:${'0'.repeat(64)}`);
  assert.equal(missingHead.status, 404);
  const unknownTag = await call('GET', '/v2/conf/repo/manifests/nope');
  assert.equal(unknownTag.status, 404);
  assertEnvelope(unknownTag, 'MANIFEST_UNKNOWN');
  const route = await call('GET', '/v2/conf/repo/nothing-here');
  assert.equal(route.status, 404);
  assertEnvelope(route, 'UNSUPPORTED');
  const push = await call('POST', '/v2/conf/repo/blobs/uploads/');
  assert.equal(push.status, 405);
  assertEnvelope(push, 'UNSUPPORTED');
  assert.match(push.body.toString(), /pushmode/);
});

test('blobs: HEAD and GET with digest and length, ranges served as 206 and 416', async () => {
  const layer = image.layers[0]!;
  const head = await call('HEAD', `/v2/conf/repo/blobs/${layer.digest}`);
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers['content-length']), layer.size);
  assert.equal(head.headers['docker-content-digest'], layer.digest);
  const full = await call('GET', `/v2/conf/repo/blobs/${layer.digest}`);
  assert.equal(full.status, 200);
  assert.equal(full.body.length, layer.size);
  const cases: Array<[string, number, number]> = [
    ['bytes=500-1499', 500, 1499],
    ['bytes=500-', 500, layer.size - 1],
    ['bytes=-500', layer.size - 500, layer.size - 1],
    [`bytes=500-${layer.size + 1000}`, 500, layer.size - 1],
  ];
  for (const [range, start, end] of cases) {
    const r = await call('GET', `/v2/conf/repo/blobs/${layer.digest}`, { range });
    assert.equal(r.status, 206, range);
    assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${layer.size}`);
    assert.ok(r.body.equals(full.body.subarray(start, end + 1)), range);
  }
  for (const range of ['bytes=500-0', `bytes=${layer.size + 10}-`]) {
    const r = await call('GET', `/v2/conf/repo/blobs/${layer.digest}`, { range });
    assert.equal(r.status, 416, range);
  }
});

test('tags/list is sorted, pages with n and last, and links to the next page', async () => {
  const all = await call('GET', '/v2/conf/repo/tags/list');
  assert.equal(all.status, 200);
  const sorted = [...tags].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  assert.deepEqual(all.json(), { name: 'conf/repo', tags: sorted });
  const first = await call('GET', '/v2/conf/repo/tags/list?n=2');
  assert.deepEqual((first.json() as { tags: string[] }).tags, sorted.slice(0, 2));
  assert.equal(first.headers['link'], `</v2/conf/repo/tags/list?n=2&last=${sorted[1]}>; rel="next"`);
  const second = await call('GET', `/v2/conf/repo/tags/list?n=2&last=${sorted[1]}`);
  assert.deepEqual((second.json() as { tags: string[] }).tags, sorted.slice(2, 4));
  const unknown = await call('GET', '/v2/conf/none/tags/list');
  assert.equal(unknown.status, 404);
  assertEnvelope(unknown, 'NAME_UNKNOWN');
});

test('_catalog lists repositories berth holds', async () => {
  const r = await call('GET', '/v2/_catalog');
  assert.equal(r.status, 200);
  assert.ok((r.json() as { repositories: string[] }).repositories.includes('conf/repo'));
});
