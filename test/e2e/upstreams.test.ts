/** @module e2e/upstreams.test — one berth, three upstreams: routing by ns, Host and prefix, no mixing, no open proxy, no foreign token realms. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { startTokenIssuer, type TokenIssuer } from '../fixtures/token-issuer.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull, startContainerd, writeHostsToml, type Containerd } from '../fixtures/clients.js';
import { startHttpCounter, type HttpCounter } from '../fixtures/http-counter.js';
import { makeTempDir, removeDir } from '../fixtures/proc.js';
import { assertEnvelope, ociCall } from '../fixtures/oci-call.js';
import { ACCEPT_ALL } from '../fixtures/http-pull.js';

const admin = { username: 'admin', password: 'Harbor12345' };
const edge = { username: 'edge', password: 'edge-pass-1' };
let work: string;
let issuer: TokenIssuer;
let harbor: Registry; // bearer tokens
let hub: Registry; // basic auth, same repository name, other content
let ghcr: HttpCounter; // third listed upstream
let quay: HttpCounter; // listed nowhere
let farIssuer: TokenIssuer; // token service on another host name
let farRealm: Registry;
let imageA: BuiltImage;
let imageB: BuiltImage;
let imageC: BuiltImage;
let berth: Berth;
let node: Containerd;

before(async () => {
  work = await makeTempDir('berth-e2e-upstreams-');
  issuer = await startTokenIssuer({ users: { admin: admin.password } });
  [harbor, hub, ghcr, quay] = await Promise.all([
    startRegistry({ auth: 'token', tokenIssuer: issuer }),
    startRegistry({ auth: 'htpasswd', users: { edge: edge.password } }),
    startHttpCounter(),
    startHttpCounter(),
  ]);
  farIssuer = await startTokenIssuer({ users: { admin: admin.password } });
  // The registry names its token service as http://localhost:PORT: another host than 127.0.0.1.
  farRealm = await startRegistry({ auth: 'token', tokenIssuer: { ...farIssuer, realm: farIssuer.realm.replace('127.0.0.1', 'localhost') } });
  imageA = await buildImage({ layers: 2, layerSize: 256 * 1024, tag: 'v1' });
  imageB = await buildImage({ layers: 2, layerSize: 512 * 1024, tag: 'v1' });
  imageC = await buildImage({ layers: 1, layerSize: 256 * 1024, tag: 'v1' });
  await pushImage(imageA, harbor.url, 'xing/app:v1', admin);
  await pushImage(imageB, hub.url, 'xing/app:v1', edge);
  await pushImage(imageC, farRealm.url, 'xing/far:v1', admin);
  const dockerConfig = path.join(work, 'docker-config.json');
  await writeFile(dockerConfig, JSON.stringify({ auths: { [harbor.host]: { auth: Buffer.from(`${admin.username}:${admin.password}`).toString('base64') } } }));
  const passwordFile = path.join(work, 'hub.pass');
  await writeFile(passwordFile, `${edge.password}\n`);
  berth = await startBerth({
    config: {
      version: 0.1,
      upstreams: [
        { name: 'harbor', remoteurl: harbor.url, dockerconfig: dockerConfig, hosts: ['harbor.xing.com'], prefix: 'harbor', default: true },
        { name: 'hub', remoteurl: hub.url, username: edge.username, passwordfile: passwordFile, hosts: ['docker.io'], prefix: 'docker.io' },
        { name: 'ghcr', remoteurl: ghcr.url, hosts: ['ghcr.io'], prefix: 'ghcr' },
        { name: 'strict', remoteurl: farRealm.url, username: admin.username, password: admin.password, prefix: 'strict' },
        { name: 'trusting', remoteurl: farRealm.url, username: admin.username, password: admin.password, prefix: 'trusting', tokenrealms: ['localhost'] },
      ],
    },
  });
  node = await startContainerd();
});

after(async () => {
  await node?.stop();
  await berth?.stop();
  await Promise.all([harbor?.stop(), hub?.stop(), farRealm?.stop(), ghcr?.stop(), quay?.stop()]);
  await Promise.all([issuer?.stop(), farIssuer?.stop()]);
  await Promise.all([imageA, imageB, imageC].map((i) => i?.remove()));
  await removeDir(work);
});

const blobGets = async (r: Registry) => (await r.requests()).filter((q) => q.method === 'GET' && q.uri.includes('/blobs/')).map((q) => q.uri);
const mentions = (uris: string[], image: BuiltImage) => image.blobs.some((b) => uris.some((u) => u.includes(b.digest)));

test("containerd with hosts.toml for two registry names gets each registry's own image under the same repository name", async () => {
  const hostsDir = path.join(work, 'hosts');
  await writeHostsToml(hostsDir, 'harbor.xing.com', berth.url);
  await writeHostsToml(hostsDir, 'docker.io', berth.url);
  await node.pull('harbor.xing.com/xing/app:v1', { hostsDir, plainHttp: true });
  await node.pull('docker.io/xing/app:v1', { hostsDir, plainHttp: true });
  const images = await node.images();
  assert.ok(
    images.some((i) => i.ref === 'harbor.xing.com/xing/app:v1' && i.digest === imageA.manifestDigest),
    JSON.stringify(images),
  );
  assert.ok(
    images.some((i) => i.ref === 'docker.io/xing/app:v1' && i.digest === imageB.manifestDigest),
    JSON.stringify(images),
  );
  // Each registry served its own content and was never asked for the other's.
  const [fromHarbor, fromHub] = [await blobGets(harbor), await blobGets(hub)];
  assert.ok(mentions(fromHarbor, imageA) && !mentions(fromHarbor, imageB));
  assert.ok(mentions(fromHub, imageB) && !mentions(fromHub, imageA));
  // Credentials from the Docker config.json reached the token service for the harbor upstream.
  assert.ok(issuer.requests.some((r) => r.user === 'admin' && r.status === 200 && r.granted.some((g) => g.name === 'xing/app')));
});

test('skopeo by path prefix and by default gets the same images from the cache', async () => {
  const before = [await harbor.bytesSent(), await hub.bytesSent()];
  const a = await skopeoPull(`${berth.host}/harbor/xing/app:v1`, path.join(work, 'a'));
  const b = await skopeoPull(`${berth.host}/docker.io/xing/app:v1`, path.join(work, 'b'));
  const d = await skopeoPull(`${berth.host}/xing/app:v1`, path.join(work, 'd'));
  assert.equal(a.manifestDigest, imageA.manifestDigest);
  assert.equal(b.manifestDigest, imageB.manifestDigest);
  assert.equal(d.manifestDigest, imageA.manifestDigest, 'no prefix: the default upstream');
  assert.deepEqual([await harbor.bytesSent(), await hub.bytesSent()], before, 'everything came from the cache');
});

test('a blob of one upstream or repository is not served under another, though it is on disk', async () => {
  const layerA = imageA.layers[0]!.digest;
  const layerB = imageB.layers[0]!.digest;
  assertEnvelope(await ociCall(berth.url, 'GET', `/v2/docker.io/xing/app/blobs/${layerA}`), 'BLOB_UNKNOWN');
  assert.equal((await ociCall(berth.url, 'HEAD', `/v2/harbor/xing/app/blobs/${layerB}`)).status, 404);
  assertEnvelope(await ociCall(berth.url, 'GET', `/v2/harbor/other/repo/blobs/${layerA}`), 'BLOB_UNKNOWN');
  // The upstreams were asked about those repositories (and said no); they sent no blob bytes.
  assert.ok((await hub.requests()).some((r) => r.method === 'HEAD' && r.uri === `/v2/xing/app/blobs/${layerA}` && r.status === 404));
  assert.ok((await harbor.requests()).some((r) => r.method === 'HEAD' && r.uri === `/v2/other/repo/blobs/${layerA}` && r.status === 404));
  // Served where it belongs.
  assert.equal((await ociCall(berth.url, 'GET', `/v2/harbor/xing/app/blobs/${layerA}`)).status, 200);
});

test('the third listed upstream gets its own requests; an unlisted registry is refused and contacted by no one', async () => {
  const r = await ociCall(berth.url, 'GET', '/v2/ghcr/xing/app/manifests/v1', { accept: ACCEPT_ALL });
  assertEnvelope(r, 'MANIFEST_UNKNOWN');
  assert.ok(
    ghcr.requests.some((q) => q.url === '/v2/xing/app/manifests/v1'),
    JSON.stringify(ghcr.requests),
  );
  const viaNs = await ociCall(berth.url, 'GET', '/v2/xing/app/manifests/v1?ns=ghcr.io', { accept: ACCEPT_ALL });
  assertEnvelope(viaNs, 'MANIFEST_UNKNOWN');

  const counts = async () => [(await harbor.requests()).length, (await hub.requests()).length, ghcr.requests.length];
  const before = await counts();
  for (const ns of ['quay.io', quay.host]) {
    const refused = await ociCall(berth.url, 'GET', `/v2/xing/app/manifests/v1?ns=${ns}`, { accept: ACCEPT_ALL });
    assert.equal(refused.status, 404);
    assert.match(assertEnvelope(refused, 'NAME_UNKNOWN'), /not mirrored by this berth/);
  }
  const hostsDir = path.join(work, 'hosts-quay');
  await writeHostsToml(hostsDir, 'quay.io', berth.url);
  await assert.rejects(node.pull('quay.io/xing/app:v1', { hostsDir, plainHttp: true, timeoutMs: 60_000 }));
  assert.equal(quay.requests.length, 0, 'the unlisted registry received nothing');
  assert.deepEqual(await counts(), before, 'nor did berth fall back to a listed upstream');
});

test('a token realm on another host gets no credentials unless listed in tokenrealms', async () => {
  const before = farIssuer.requests.length;
  const refused = await ociCall(berth.url, 'GET', '/v2/strict/xing/far/manifests/v1', { accept: ACCEPT_ALL });
  assert.equal(refused.status, 502);
  assert.match(assertEnvelope(refused, 'UNAVAILABLE'), /token realm http:\/\/localhost:\d+\/service\/token.*credentials were not sent/);
  assert.equal(farIssuer.requests.length, before, 'the foreign realm was not contacted at all');
  const logs = await berth.logLines();
  assert.ok(
    logs.some((l) => String(l['msg']).startsWith('refused token realm') && l['upstream'] === 'strict'),
    'the refusal is logged',
  );

  const pulled = await skopeoPull(`${berth.host}/trusting/xing/far:v1`, path.join(work, 'far'));
  assert.equal(pulled.manifestDigest, imageC.manifestDigest);
  assert.ok(
    farIssuer.requests.slice(before).some((r) => r.user === 'admin' && r.status === 200),
    'listed realm: berth authenticated there',
  );
});
