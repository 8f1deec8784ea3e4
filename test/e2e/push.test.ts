/** @module e2e/push.test — skopeo and docker push into berth in every pushmode; write-through and write-behind images pulled straight from the central registry. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull, startDockerd, type Dockerd } from '../fixtures/clients.js';
import { makeTempDir, removeDir, waitFor } from '../fixtures/proc.js';
import { PREFIX, PUSHER, assertSameImage, pushModesConfig, queuedJobs, waitForDrain, type PushMode } from '../fixtures/push.js';
import { OCI_MANIFEST, assertError, call, digestOf, makeManifest, uploadBlob } from '../fixtures/oci-http.js';

const creds = { username: 'admin', password: 'Harbor12345' };
let registry: Registry;
let berth: Berth;
let plain: Berth;
let image: BuiltImage;
let work: string;

before(async () => {
  work = await makeTempDir('berth-e2e-push-');
  registry = await startRegistry({ auth: 'token', users: { [creds.username]: creds.password } });
  image = await buildImage({ layers: 2, layerSize: 1024 * 1024, tag: 'v1' });
  berth = await startBerth({ config: pushModesConfig(work, registry.url, creds) });
  plain = await startBerth({ config: { version: 0.1 } });
});

after(async () => {
  await berth?.stop();
  await plain?.stop();
  await registry?.stop();
  await image?.remove();
  await removeDir(work);
});

let pulls = 0;
const pullFrom = (ref: string, withCreds = false) => skopeoPull(ref, path.join(work, `pull-${pulls++}`), withCreds ? { creds } : {});
/** Requests the central registry saw for a repository. */
const upstreamRequests = async (repo: string) => (await registry.requests()).filter((r) => r.uri.startsWith(`/v2/${repo}/`));

for (const mode of ['local', 'write-through', 'write-behind'] as const) {
  test(`skopeo copy into berth with pushmode ${mode}`, async () => {
    const repo = `xing/skopeo-${PREFIX[mode]}`;
    const digest = await pushImage(image, berth.url, `${PREFIX[mode]}/${repo}:v1`);
    const fromBerth = await pullFrom(`${berth.host}/${PREFIX[mode]}/${repo}:v1`);
    assert.equal(fromBerth.manifestDigest, digest);
    await checkUpstream(mode, repo, 'v1', fromBerth);
  });
}

/** write-through: at the registry as soon as the push returned; write-behind: once the queue drained; local: never. */
async function checkUpstream(mode: PushMode, repo: string, tag: string, pushed: Awaited<ReturnType<typeof pullFrom>>): Promise<void> {
  if (mode === 'local') {
    const seen = await upstreamRequests(repo);
    assert.ok(!seen.some((r) => r.method === 'PUT' || r.method === 'POST' || r.method === 'PATCH'), JSON.stringify(seen));
    return;
  }
  if (mode === 'write-behind') await waitForDrain(berth);
  const direct = await pullFrom(`${registry.host}/${repo}:${tag}`, true);
  assertSameImage(direct, pushed);
}

test('pushing upstream: blobs the registry has in another repository are mounted there, not sent again', async () => {
  await pushImage(image, berth.url, 'through/xing/mount-a:v1');
  const before = await registry.bytesSent();
  await pushImage(image, berth.url, 'through/xing/mount-b:v1');
  const seen = await upstreamRequests('xing/mount-b');
  const mounts = seen.filter((r) => r.method === 'POST' && r.uri.includes('mount=') && r.uri.includes('from=xing%2Fmount-a') && r.status === 201);
  assert.equal(mounts.length, image.blobs.length, JSON.stringify(seen.map((r) => `${r.method} ${r.uri} ${r.status}`)));
  assert.ok(!seen.some((r) => r.method === 'PUT' && r.uri.includes('/blobs/uploads/')), 'no blob bytes were uploaded again');
  assert.equal(await registry.bytesSent(), before, 'and none fetched');
  assertSameImage(await pullFrom(`${registry.host}/xing/mount-b:v1`, true), await pullFrom(`${registry.host}/xing/mount-a:v1`, true));
});

test('skopeo copy into a plain-registry berth, and a readonly upstream refuses naming pushmode', async () => {
  const digest = await pushImage(image, plain.url, 'xing/plain:v1');
  assert.equal((await pullFrom(`${plain.host}/xing/plain@${digest}`)).manifestDigest, image.manifestDigest);
  await assert.rejects(pushImage(image, berth.url, 'ro/xing/nope:v1'), /pushmode/);
});

test('docker push into berth in every mode (and the plain registry); pushed images pull from the central registry', async () => {
  await pushImage(image, registry.url, 'xing/base:v1', creds);
  const docker: Dockerd = await startDockerd({ insecureRegistries: [berth.host, plain.host] });
  try {
    // berth forwards pushes with its own upstream account, so it requires clients to log in.
    await docker.login(berth.host, PUSHER.username, PUSHER.password);
    const source = `${berth.host}/ro/xing/base:v1`;
    await docker.pull(source);
    for (const mode of ['local', 'write-through', 'write-behind'] as const) {
      const repo = `xing/docker-${PREFIX[mode]}`;
      const ref = `${berth.host}/${PREFIX[mode]}/${repo}:d1`;
      await docker.tag(source, ref);
      const out = await docker.push(ref);
      const digest = /digest: (sha256:[0-9a-f]{64})/.exec(out.stdout)?.[1];
      assert.ok(digest, out.stdout);
      const fromBerth = await pullFrom(ref);
      assert.equal(fromBerth.manifestDigest, digest);
      await checkUpstream(mode, repo, 'd1', fromBerth);
    }
    const plainRef = `${plain.host}/xing/docker-plain:d1`;
    await docker.tag(source, plainRef);
    await docker.push(plainRef);
    await docker.rmi(plainRef);
    await docker.pull(plainRef);
  } finally {
    await docker.stop();
  }
});

test('a manifest naming a blob that exists nowhere is refused in every mode; nothing is queued or tagged', async () => {
  for (const mode of ['local', 'write-through', 'write-behind'] as const) {
    const repo = `${PREFIX[mode]}/xing/dangling`;
    const m = makeManifest(Buffer.from('{"dangling":true}'), [randomBytes(64)]);
    await uploadBlob(berth.url, repo, m.config.data);
    const put = await call(berth.url, 'PUT', `/v2/${repo}/manifests/v1`, { body: m.bytes, headers: { 'content-type': OCI_MANIFEST } });
    assertError(put, 400, 'MANIFEST_BLOB_UNKNOWN');
    assert.match(put.body.toString(), new RegExp(m.layers[0]!.digest));
    assert.notEqual((await call(berth.url, 'GET', `/v2/${repo}/manifests/v1`)).status, 200);
  }
  await waitForDrain(berth);
  assert.deepEqual(queuedJobs(berth), []);
});

test('write-through with the central registry down: the push fails with a clear OCI error and no tag appears', async () => {
  const small = await buildImage({ layers: 1, layerSize: 64 * 1024, tag: 'v1' });
  await registry.down();
  try {
    await assert.rejects(pushImage(small, berth.url, 'through/xing/wt-down:v1'), /503/);
    // Clients print only the status of a 5xx; the envelope says what happened.
    const start = await call(berth.url, 'POST', '/v2/through/xing/wt-down/blobs/uploads/');
    const data = randomBytes(100);
    const put = await call(berth.url, 'PUT', `${start.header('location')}?digest=${digestOf(data)}`, { body: data });
    assertError(put, 503, 'UNAVAILABLE');
    assert.match(put.body.toString(), /write-through push to upstream through failed, nothing was tagged: upstream through .*unreachable/);
    const tags = await call(berth.url, 'GET', '/v2/through/xing/wt-down/tags/list');
    assert.ok(tags.status === 404 || !tags.json<{ tags: string[] }>().tags.includes('v1'), tags.body.toString());
    assert.notEqual((await call(berth.url, 'GET', '/v2/through/xing/wt-down/manifests/v1')).status, 200);
  } finally {
    await registry.up();
    await small.remove();
  }
  // Once berth sees the registry again (its probe), the tag is simply unknown there too.
  await waitFor(async () => (await call(berth.url, 'GET', '/v2/through/xing/wt-down/manifests/v1')).status === 404, 30_000);
});
