/** @module e2e/authz.test — htpasswd logins and per-repository rules, pass-through authorisation, and request limits, with real clients. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { appendFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { startTokenIssuer, type AccessEntry, type TokenIssuer } from '../fixtures/token-issuer.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull, startContainerd, startDockerd, writeHostsToml } from '../fixtures/clients.js';
import { makeTempDir, removeDir, run, sleep, waitFor } from '../fixtures/proc.js';
import { assertEnvelope, basic, ociCall } from '../fixtures/oci-call.js';
import { ACCEPT_ALL } from '../fixtures/http-pull.js';

const admin = { username: 'admin', password: 'Harbor12345' };
/** Accounts at the central registry: alice may pull everything, bob nothing under private/. */
const alice = { username: 'alice', password: 'alice-central-pw' };
const bob = { username: 'bob', password: 'bob-central-pw' };
/** Accounts at berth (htpasswd). */
const carol = { username: 'carol', password: 'carol-edge-pw' };
const dave = { username: 'dave', password: 'dave-edge-pw' };
const REALM = 'berth-edge';

let work: string;
let issuer: TokenIssuer;
let central: Registry;
let app: BuiltImage;
let secret: BuiltImage;
let pub: BuiltImage;
let berth: Berth;
let htpasswd: string;

before(async () => {
  work = await makeTempDir('berth-e2e-authz-');
  issuer = await startTokenIssuer({
    users: { admin: admin.password, alice: alice.password, bob: bob.password },
    allow: { bob: (_u: string | null, e: AccessEntry) => (e.name.startsWith('private/') ? [] : ['pull']) },
  });
  central = await startRegistry({ auth: 'token', tokenIssuer: issuer });
  app = await buildImage({ layers: 2, layerSize: 256 * 1024, tag: 'v1' });
  secret = await buildImage({ layers: 2, layerSize: 256 * 1024, tag: 'v1' });
  pub = await buildImage({ layers: 1, layerSize: 128 * 1024, tag: 'v1' });
  await pushImage(app, central.url, 'xing/app:v1', admin);
  await pushImage(secret, central.url, 'private/secret:v1', admin);
  await pushImage(pub, central.url, 'public/base:v1', admin);
  htpasswd = path.join(work, 'htpasswd');
  const lines = await Promise.all([carol, dave].map(async (u) => (await run('htpasswd', ['-Bbn', u.username, u.password])).stdout.trim()));
  await writeFile(htpasswd, `${lines.join('\n')}\n`);
  const account = { remoteurl: central.url, username: admin.username, password: admin.password };
  berth = await startBerth({
    config: {
      version: 0.1,
      upstreams: [
        { name: 'central', ...account, hosts: ['harbor.xing.com'], prefix: 'central', default: true },
        { name: 'direct', ...account, hosts: ['direct.xing.com'], prefix: 'direct', passthroughauth: true, passthroughttl: '1s' },
        { name: 'strict', ...account, prefix: 'strict', passthroughauth: true, passthroughttl: '1s', passthroughoutage: 'deny' },
      ],
      auth: {
        htpasswd: { realm: REALM, path: htpasswd },
        rules: [
          { users: ['carol'], repositories: ['xing/*', 'private/*'], actions: ['pull'], upstream: 'central' },
          { users: ['dave'], repositories: ['xing/*'], actions: ['pull'], upstream: 'central' },
          { users: ['anonymous'], repositories: ['public/*'], actions: ['pull'], upstream: 'central' },
        ],
      },
    },
  });
});

after(async () => {
  await berth?.stop();
  await central?.stop();
  await issuer?.stop();
  await Promise.all([app, secret, pub].map((i) => i?.remove()));
  await removeDir(work);
});

const manifest = (name: string, ref: string, headers: Record<string, string> = {}) =>
  ociCall(berth.url, 'GET', `/v2/${name}/manifests/${ref}`, { accept: ACCEPT_ALL, ...headers });

function assertChallenge(r: { status: number; headers: Record<string, unknown>; body: Buffer }): void {
  assert.equal(r.status, 401, r.body.toString());
  assert.equal(r.headers['www-authenticate'], `Basic realm="${REALM}", charset="UTF-8"`);
  assertEnvelope(r, 'UNAUTHORIZED');
}

test('GET /v2/: anonymous clients are challenged, htpasswd users log in, wrong passwords are refused', async () => {
  assertChallenge(await ociCall(berth.url, 'GET', '/v2/'));
  assert.equal((await ociCall(berth.url, 'GET', '/v2/', basic(carol.username, carol.password))).status, 200);
  assertChallenge(await ociCall(berth.url, 'GET', '/v2/', basic(carol.username, 'wrong')));
  assertChallenge(await ociCall(berth.url, 'GET', '/v2/', basic('mallory', 'x')));
  // A user added to the file can log in without a restart.
  await appendFile(htpasswd, `${(await run('htpasswd', ['-Bbn', 'erin', 'erin-pw'])).stdout.trim()}\n`);
  await waitFor(async () => (await ociCall(berth.url, 'GET', '/v2/', basic('erin', 'erin-pw'))).status === 200, 10_000, { what: 'htpasswd reloaded' });
});

test('rules: allowed pulls pass with skopeo and containerd; denied ones get 401/403 envelopes; no layer leaks across repositories', async () => {
  const pulled = await skopeoPull(`${berth.host}/private/secret:v1`, path.join(work, 'carol'), { creds: carol });
  assert.equal(pulled.manifestDigest, secret.manifestDigest);
  assert.equal((await skopeoPull(`${berth.host}/xing/app:v1`, path.join(work, 'dave'), { creds: dave })).manifestDigest, app.manifestDigest);
  await assert.rejects(skopeoPull(`${berth.host}/private/secret:v1`, path.join(work, 'dave2'), { creds: dave }));

  const denied = await manifest('private/secret', secret.manifestDigest, basic(dave.username, dave.password));
  assert.equal(denied.status, 403);
  assert.match(assertEnvelope(denied, 'DENIED'), /user "dave" may not pull private\/secret/);
  assertChallenge(await manifest('xing/app', 'v1'));
  assertChallenge(await manifest('private/secret', 'v1', basic(carol.username, 'wrong')));
  // The secret's layers are on disk (carol pulled them), yet dave cannot read them through a repository he may pull.
  const leak = await ociCall(berth.url, 'GET', `/v2/xing/app/blobs/${secret.layers[0]!.digest}`, basic(dave.username, dave.password));
  assertEnvelope(leak, 'BLOB_UNKNOWN');

  const hostsDir = path.join(work, 'hosts');
  await writeHostsToml(hostsDir, 'harbor.xing.com', berth.url);
  const node = await startContainerd();
  try {
    await node.pull('harbor.xing.com/public/base:v1', { hostsDir, plainHttp: true });
    await node.pull('harbor.xing.com/private/secret:v1', { hostsDir, plainHttp: true, creds: carol });
    await assert.rejects(node.pull('harbor.xing.com/xing/app:v1', { hostsDir, plainHttp: true, timeoutMs: 60_000 }));
    const refs = (await node.images()).map((i) => `${i.ref}@${i.digest}`);
    assert.ok(refs.includes(`harbor.xing.com/public/base:v1@${pub.manifestDigest}`), refs.join('\n'));
    assert.ok(refs.includes(`harbor.xing.com/private/secret:v1@${secret.manifestDigest}`), refs.join('\n'));
  } finally {
    await node.stop();
  }
  const users = (await berth.logLines()).filter((l) => l['msg'] === 'request').map((l) => l['user']);
  assert.ok(users.includes('carol') && users.includes('anonymous'), 'the access log names the user');
});

test('docker login and pull through dockerd; a user the rules do not allow is denied', async () => {
  const docker = await startDockerd({ insecureRegistries: [berth.host] });
  try {
    await docker.login(berth.host, carol.username, carol.password);
    assert.equal(await docker.pull(`${berth.host}/private/secret:v1`), secret.manifestDigest);
    await assert.rejects(docker.login(berth.host, carol.username, 'wrong-password'), /401|unauthorized/i);
    await docker.login(berth.host, dave.username, dave.password);
    await assert.rejects(docker.pull(`${berth.host}/private/secret:v1`), /denied|may not pull/i);
  } finally {
    await docker.stop();
  }
});

test('_catalog lists only what the client may pull', async () => {
  const list = async (headers: Record<string, string> = {}) => (await ociCall(berth.url, 'GET', '/v2/_catalog', headers)).json()['repositories'] as string[];
  const forCarol = await list(basic(carol.username, carol.password));
  assert.ok(forCarol.includes('private/secret') && forCarol.includes('xing/app'), forCarol.join());
  const forDave = await list(basic(dave.username, dave.password));
  assert.ok(forDave.includes('xing/app') && !forDave.some((r) => r.includes('secret')), forDave.join());
  assert.deepEqual(
    (await list()).filter((r) => !r.startsWith('central/')),
    ['public/base'],
  );
});

test('pass-through: the central registry decides; a user without access there cannot pull a cached private image', async () => {
  const blobGets = async () => (await central.requests()).filter((r) => r.method === 'GET' && r.uri.includes('/blobs/')).length;
  const pulled = await skopeoPull(`${berth.host}/direct/private/secret:v1`, path.join(work, 'alice'), { creds: alice });
  assert.equal(pulled.manifestDigest, secret.manifestDigest);
  const before = await blobGets();
  await assert.rejects(skopeoPull(`${berth.host}/direct/private/secret:v1`, path.join(work, 'bob'), { creds: bob }));
  const denied = await manifest('direct/private/secret', secret.manifestDigest, basic(bob.username, bob.password));
  assert.equal(denied.status, 403);
  assertEnvelope(denied, 'DENIED');
  const blob = await ociCall(berth.url, 'GET', `/v2/direct/private/secret/blobs/${secret.layers[0]!.digest}`, basic(bob.username, bob.password));
  assert.equal(blob.status, 403, 'cached layers are refused too');
  assertChallenge(await manifest('direct/private/secret', secret.manifestDigest));
  assertChallenge(await manifest('direct/private/secret', secret.manifestDigest, basic(alice.username, 'wrong')));
  assert.equal(await blobGets(), before, 'no content left the central registry for the refused requests');
  // docker login to the pass-through upstream's name checks the credentials there.
  assert.equal((await ociCall(berth.url, 'GET', '/v2/?ns=direct.xing.com', basic(bob.username, bob.password))).status, 200);
  assertChallenge(await ociCall(berth.url, 'GET', '/v2/?ns=direct.xing.com', basic(bob.username, 'wrong')));
  // bob may pull what the central registry lets him.
  assert.equal((await skopeoPull(`${berth.host}/direct/xing/app:v1`, path.join(work, 'bob-app'), { creds: bob })).manifestDigest, app.manifestDigest);
  assert.ok(
    issuer.requests.some((r) => r.user === 'bob' && r.status === 200 && r.granted.length === 0),
    "bob's own credentials were checked at the token service",
  );
});

test('pass-through during an outage: last known decisions hold, or everything is refused with passthroughoutage: deny', async () => {
  const aliceHeaders = basic(alice.username, alice.password);
  assert.equal((await manifest('strict/xing/app', app.manifestDigest, aliceHeaders)).status, 200);
  await sleep(1_100); // past passthroughttl: the next decisions need the upstream
  await central.down();
  try {
    assert.equal((await manifest('direct/private/secret', secret.manifestDigest, aliceHeaders)).status, 200, 'alice: last known allowed');
    assert.equal((await manifest('direct/private/secret', secret.manifestDigest, basic(bob.username, bob.password))).status, 403, 'bob: last known denied');
    assertEnvelope(await manifest('direct/private/secret', secret.manifestDigest, basic(admin.username, admin.password)), 'UNAVAILABLE');
    const strict = await manifest('strict/xing/app', app.manifestDigest, aliceHeaders);
    assert.equal(strict.status, 503);
    assert.match(assertEnvelope(strict, 'UNAVAILABLE'), /passthroughoutage is deny/);
  } finally {
    await central.up();
  }
});

/** Sends raw bytes and returns the whole response text (the server closes or the timeout passes). */
function raw(text: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(berth.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.setTimeout(5_000, () => socket.end());
    socket.write(text);
  });
}

function rawEnvelope(response: string, status: number, code: string): void {
  assert.match(response, new RegExp(`^HTTP/1\\.1 ${status} `), response.slice(0, 200));
  const body = response.slice(response.indexOf('\r\n\r\n') + 4);
  assert.equal((JSON.parse(body) as { errors: Array<{ code: string }> }).errors[0]?.code, code, body);
}

test('hardening: oversized headers and bodies, bad names and paths get 4xx envelopes; nothing outside the root is touched', async () => {
  rawEnvelope(await raw(`GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 431, 'UNSUPPORTED');
  rawEnvelope(await raw('NOT A REQUEST\r\n\r\n'), 400, 'UNSUPPORTED');
  rawEnvelope(
    await raw(
      'PUT /v2/public/base/manifests/v2 HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 5242880\r\nConnection: close\r\n\r\n',
    ),
    413,
    'MANIFEST_INVALID',
  );
  rawEnvelope(await raw('GET /v2/public/base/manifests/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello'), 400, 'UNSUPPORTED');

  const long = `a${'b'.repeat(255)}`;
  const deep = Array.from({ length: 17 }, (_, i) => `c${i}`).join('/');
  for (const name of [long, deep, 'UPPER/case', 'a/..%2f..%2fetc']) {
    const r = await ociCall(berth.url, 'GET', `/v2/${name}/manifests/v1`);
    assert.equal(r.status, 400, name);
    assertEnvelope(r, 'NAME_INVALID');
  }
  rawEnvelope(await raw('GET /v2/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 404, 'UNSUPPORTED');
  const probes = [
    '/v2/%2e%2e/%2e%2e/etc/manifests/v1',
    '/v2/public/base/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd',
    '/v2/public/base/blobs/sha256%3a..%2f..%2fmetadata.db',
    '/v2/public/base/blobs/..%2f..%2fmetadata.db',
    '/v2/public/base/manifests/..%2f..%2fmetadata.db',
    '/v2/public/base/manifests/sha256:../../x',
    '/v2/public/base/tags/list/../../../../etc/passwd',
    '/v2/%00/manifests/v1',
  ];
  for (const p of probes) {
    const r = await ociCall(berth.url, 'GET', p);
    assert.ok(r.status >= 400 && r.status < 500, `${p}: ${r.status} ${r.body.toString()}`);
    assert.ok(Array.isArray((r.json() as { errors?: unknown }).errors), `${p}: envelope`);
    assert.ok(!r.body.toString().includes('root:'), `${p}: no file content`);
  }
  assert.deepEqual(
    (await readdir(berth.root)).filter((n) => !/^(blobs|tmp|uploads|berth\.lock(\.w\d+)?|instance-id|reserve|(metadata|push)\.db(-wal|-shm)?)$/.test(n)),
    [],
    "only berth's own files in the root",
  );
});
