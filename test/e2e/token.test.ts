/** @module e2e/token.test — berth's own bearer tokens in write-through: dockerd, skopeo and containerd pull anonymously, pushes need a login and reach the central registry. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { Agent } from 'undici';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull, startContainerd, startDockerd, writeHostsToml } from '../fixtures/clients.js';
import { startPodman } from '../fixtures/podman.js';
import { makeTempDir, removeDir, run, waitFor } from '../fixtures/proc.js';
import { basic, ociCall } from '../fixtures/oci-call.js';
import { ACCEPT_ALL } from '../fixtures/http-pull.js';

const admin = { username: 'admin', password: 'Harbor12345' };
/** The one berth user who may push. */
const carol = { username: 'carol', password: 'carol-edge-pw' };
const SERVICE = 'berth-e2e';

let work: string;
let central: Registry;
let app: BuiltImage;
let berth: Berth;
let htpasswd: string;

/** The edge-site setup of the README: write-through with the site's own upstream account, htpasswd, anonymous pull. */
function siteConfig(token: boolean): Record<string, unknown> {
  return {
    version: 0.1,
    proxy: { remoteurl: central.url, ...admin, pushmode: 'write-through' },
    auth: {
      htpasswd: { realm: 'berth', path: htpasswd },
      rules: [
        { users: ['anonymous'], actions: ['pull'] },
        { users: ['carol'], actions: ['pull', 'push'] },
      ],
      ...(token ? { token: { service: SERVICE, expiration: '5m' } } : {}),
    },
    // Two serving workers: a token one issues must hold at the other (they share the root's key).
    http: { workers: 2 },
  };
}

before(async () => {
  work = await makeTempDir('berth-e2e-token-');
  central = await startRegistry({ auth: 'token', users: { [admin.username]: admin.password } });
  app = await buildImage({ layers: 2, layerSize: 256 * 1024, tag: 'v1' });
  await pushImage(app, central.url, 'xing/app:v1', admin);
  htpasswd = path.join(work, 'htpasswd');
  await writeFile(htpasswd, `${(await run('htpasswd', ['-Bbn', carol.username, carol.password])).stdout.trim()}\n`);
  berth = await startBerth({ config: siteConfig(true) });
});

after(async () => {
  await berth?.stop();
  await central?.stop();
  await app?.remove();
  await removeDir(work);
});

test('GET /v2/ challenges with Bearer naming /auth/token; anonymous tokens grant pull only, wrong passwords get none', async () => {
  const challenge = await ociCall(berth.url, 'GET', '/v2/');
  assert.equal(challenge.status, 401);
  assert.equal(challenge.headers['www-authenticate'], `Bearer realm="${berth.url}/auth/token",service="${SERVICE}"`);
  // Anonymous pulls without a token pass (the rules allow them); an anonymous push is told which scope to ask for.
  assert.equal((await ociCall(berth.url, 'HEAD', '/v2/xing/app/manifests/v1', { accept: ACCEPT_ALL })).status, 200);
  const scoped = await ociCall(berth.url, 'POST', '/v2/xing/app/blobs/uploads/');
  assert.equal(scoped.status, 401);
  assert.equal(scoped.headers['www-authenticate'], `Bearer realm="${berth.url}/auth/token",service="${SERVICE}",scope="repository:xing/app:pull,push"`);

  const scope = `service=${SERVICE}&scope=${encodeURIComponent('repository:xing/app:pull,push')}`;
  const anon = await ociCall(berth.url, 'GET', `/auth/token?${scope}`);
  assert.equal(anon.status, 200, anon.body.toString());
  const body = JSON.parse(anon.body.toString()) as { token: string; access_token: string; expires_in: number; issued_at: string };
  assert.equal(body.token, body.access_token);
  assert.equal(body.expires_in, 300);
  const claims = JSON.parse(Buffer.from(body.token.split('.')[1]!, 'base64url').toString()) as { aud: string; access: unknown };
  assert.equal(claims.aud, SERVICE);
  assert.deepEqual(claims.access, [{ type: 'repository', name: 'xing/app', actions: ['pull'] }]);
  assert.equal((await ociCall(berth.url, 'GET', '/v2/', { authorization: `Bearer ${body.token}` })).status, 200);

  const wrong = await ociCall(berth.url, 'GET', `/auth/token?${scope}`, basic(carol.username, 'wrong'));
  assert.equal(wrong.status, 401);
  const user = await ociCall(berth.url, 'GET', `/auth/token?${scope}`, basic(carol.username, carol.password));
  const granted = JSON.parse(Buffer.from((JSON.parse(user.body.toString()) as { token: string }).token.split('.')[1]!, 'base64url').toString()) as {
    access: unknown;
  };
  assert.deepEqual(granted.access, [{ type: 'repository', name: 'xing/app', actions: ['pull', 'push'] }]);
  assert.equal((await ociCall(berth.url, 'GET', '/v2/', basic(carol.username, carol.password))).status, 200, 'Basic stays accepted');
});

test('two serving workers share one generated key (0600 in the root directory): a token works on every connection', async (t) => {
  const key = path.join(berth.root, 'token.key');
  assert.equal((await stat(key)).mode & 0o777, 0o600);
  const started = async () => (await berth.logLines()).filter((l) => l['msg'] === 'issuing bearer tokens at /auth/token');
  await waitFor(async () => new Set((await started()).map((l) => l['worker'])).size >= 2, 30_000, { what: 'both workers issuing tokens' });
  assert.ok((await started()).every((l) => l['key'] === key));
  const scope = `service=${SERVICE}&scope=${encodeURIComponent('repository:xing/app:pull,push')}`;
  const { token } = JSON.parse((await ociCall(berth.url, 'GET', `/auth/token?${scope}`, basic(carol.username, carol.password))).body.toString()) as {
    token: string;
  };
  for (let i = 0; i < 12; i++) {
    // A fresh connection each time, so the requests spread over the workers.
    const agent = new Agent();
    try {
      const r = await ociCall(berth.url, 'POST', '/v2/xing/app/blobs/uploads/', { authorization: `Bearer ${token}` }, agent);
      assert.equal(r.status, 202, r.body.toString());
      await ociCall(berth.url, 'DELETE', String(r.headers['location']).replace(/^https?:\/\/[^/]+/, ''), { authorization: `Bearer ${token}` }, agent);
    } finally {
      await agent.close();
    }
  }
  const pids = new Set((await berth.logLines()).filter((l) => l['msg'] === 'request' && l['user'] === 'carol').map((l) => l['worker']));
  t.diagnostic(`served by ${pids.size} worker process(es)`);
});

test('dockerd: anonymous pull works (it failed with Basic only), anonymous push is refused, docker login + push reaches the central registry', async (t) => {
  const docker = await startDockerd();
  const basicOnly = await startBerth({ config: siteConfig(false) });
  try {
    // The setup before auth.token: Docker does not pull anonymously through a Basic challenge.
    const before = await docker.pull(`${basicOnly.host}/xing/app:v1`).then(
      () => assert.fail('pulled anonymously through a Basic challenge'),
      (e: Error) => e.message,
    );
    assert.match(before, /no basic auth credentials/);
    t.diagnostic(`without auth.token: ${lastLine(before)}`);

    assert.equal(await docker.pull(`${berth.host}/xing/app:v1`), app.manifestDigest);
    const ref = `${berth.host}/xing/pushed:v1`;
    await docker.tag(`${berth.host}/xing/app:v1`, ref);
    const refused = await docker.push(ref).then(
      () => assert.fail('an anonymous push went through'),
      (e: Error) => e.message,
    );
    assert.match(refused, /unauthorized|authentication required|denied/i);
    t.diagnostic(`anonymous push: ${refused.split('\n').find((l) => /unauthorized|authentication required|denied/i.test(l)) ?? ''}`);
    assert.equal((await central.requests()).filter((r) => r.uri.startsWith('/v2/xing/pushed/') && r.method === 'PUT').length, 0);

    await docker.login(berth.host, carol.username, carol.password);
    await docker.push(ref);
    const direct = await skopeoPull(`${central.host}/xing/pushed:v1`, path.join(work, 'direct'), { creds: admin });
    assert.equal(direct.blobs.length, app.blobs.length, 'the image is at the central registry, all of it');
    const users = (await berth.logLines()).filter((l) => l['msg'] === 'request').map((l) => l['user']);
    assert.ok(users.includes('carol') && users.includes('anonymous'), 'the access log names who pulled and pushed');
  } finally {
    await basicOnly.stop();
    await docker.stop();
  }
});

test('skopeo, containerd and podman pull anonymously through the Bearer challenge; skopeo pushes only with credentials', async () => {
  assert.equal((await skopeoPull(`${berth.host}/xing/app:v1`, path.join(work, 'skopeo'))).manifestDigest, app.manifestDigest);
  await assert.rejects(pushImage(app, berth.url, 'xing/skopeo-anon:v1'), /unauthorized|authentication required|denied/i);
  assert.equal(await pushImage(app, berth.url, 'xing/skopeo-carol:v1', carol), app.manifestDigest);
  assert.equal(
    (await skopeoPull(`${central.host}/xing/skopeo-carol:v1`, path.join(work, 'skopeo-direct'), { creds: admin })).manifestDigest,
    app.manifestDigest,
  );
  const hostsDir = path.join(work, 'hosts');
  await writeHostsToml(hostsDir, 'harbor.xing.com', berth.url);
  const node = await startContainerd();
  try {
    await node.pull('harbor.xing.com/xing/app:v1', { hostsDir, plainHttp: true });
    const refs = (await node.images()).map((i) => `${i.ref}@${i.digest}`);
    assert.ok(refs.includes(`harbor.xing.com/xing/app:v1@${app.manifestDigest}`), refs.join('\n'));
  } finally {
    await node.stop();
  }
  const registriesConf = path.join(work, 'registries.conf');
  await writeFile(registriesConf, `[[registry]]\nlocation = "${berth.host}"\ninsecure = true\n`);
  const podman = await startPodman({ registriesConf });
  try {
    assert.equal(await podman.pull(`${berth.host}/xing/app:v1`), app.manifestDigest);
  } finally {
    await podman.stop();
  }
});

/** The client's own error line (the last non-empty line of what it printed). */
function lastLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .at(-1) ?? ''
  );
}
