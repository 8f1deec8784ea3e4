/** @module e2e/seed.test — the seed's setup as a new user lives it: Harbor over HTTPS with a CN-only self-signed certificate and basic auth, the seed's config.yml, Docker, skopeo and ctr as nodes. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { request } from 'undici';
import bcrypt from 'bcryptjs';
import { BERTH_BIN, startBerth, type Berth } from '../fixtures/berth.js';
import { startRegistry } from '../fixtures/registry.js';
import { HARBOR_CREDS, HARBOR_NAME, startHarbor, type Harbor } from '../fixtures/harbor.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { skopeoPull, startContainerd, startDockerd, writeHostsToml, type Containerd, type Dockerd } from '../fixtures/clients.js';
import { freePort, makeTempDir, removeDir, run, waitFor } from '../fixtures/proc.js';
import { startNetns } from '../fixtures/netns.js';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createCa } from '../../src/cli/certs.js';

let work: string;
let harbor: Harbor;
let image: BuiltImage;
let docker: Dockerd;
let ctrd: Containerd;
const REPO = 'xing/mynginx';

before(async () => {
  work = await makeTempDir('berth-e2e-seed-');
  harbor = await startHarbor();
  image = await buildImage({ layers: 2, layerSize: 256 * 1024, tag: 'v1' });
  await pushImage(image, harbor.registry.url, `${REPO}:v1`, HARBOR_CREDS);
  docker = await startDockerd();
  ctrd = await startContainerd();
});

after(async () => {
  await docker?.stop();
  await ctrd?.stop();
  await harbor?.stop();
  await image?.remove();
  await removeDir(work);
});

/** The seed's config.yml (docs/design.md §2) but for addresses: Harbor is reached by name, connecting to loopback. */
function seedConfig(proxy: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 0.1,
    log: { fields: { service: 'registry' } },
    storage: { cache: { blobdescriptor: 'inmemory' } },
    http: { headers: { 'X-Content-Type-Options': ['nosniff'] } },
    proxy: { remoteurl: harbor.url, username: HARBOR_CREDS.username, password: HARBOR_CREDS.password, resolve: '127.0.0.1', ...proxy },
    health: { storagedriver: { enabled: true, interval: '10s', threshold: 3 } },
    ...top,
  };
}

let n = 0;
function berthCli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BERTH_BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, cwd: work, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
async function configFile(doc: Record<string, unknown>): Promise<string> {
  const file = path.join(work, `config-${n++}.yml`);
  const withRoot = { ...doc, storage: { ...(doc['storage'] as object), filesystem: { rootdirectory: path.join(work, `data-${n}`) } } };
  await writeFile(file, stringify(withRoot));
  return file;
}
const pullDir = () => path.join(work, `pull-${n++}`);
const hostsDirFor = async (berth: Berth) => {
  const dir = path.join(work, `hosts-${n++}`);
  await writeHostsToml(dir, HARBOR_NAME, `http://${berth.host}`);
  return dir;
};
const harborWrites = async (repo: string) =>
  (await harbor.registry.requests()).filter((r) => r.uri.startsWith(`/v2/${repo}/`) && ['PUT', 'POST', 'PATCH'].includes(r.method));

test("write-through or write-behind with berth's own Harbor account and no client auth is refused at start, naming the fix", async () => {
  for (const pushmode of ['write-through', 'write-behind']) {
    const file = await configFile(seedConfig({ pushmode }));
    const r = berthCli(['serve', '--config', file]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`proxy\\.pushmode: ${pushmode} forwards pushes .* account "admin"`));
    assert.match(r.stderr, /auth\.htpasswd/);
    assert.match(r.stderr, /passthroughauth: true/);
  }
  assert.equal(berthCli(['config', 'check', await configFile(seedConfig({ pushmode: 'local' }))]).status, 0, 'local mode never pushes upstream');
});

test('with auth.htpasswd: a wrong password fails docker login, an anonymous push is refused and never reaches Harbor; a logged-in push does', async () => {
  const htpasswd = path.join(work, 'edge.htpasswd');
  await writeFile(htpasswd, `dev:${bcrypt.hashSync('dev-secret', 4)}\n`);
  const berth = await startBerth({
    config: seedConfig({ pushmode: 'write-through', ca: harbor.certFile }, { auth: { htpasswd: { realm: 'berth', path: htpasswd } } }),
  });
  try {
    await assert.rejects(docker.login(berth.host, 'dev', 'WRONG'), /unauthorized|401/i);
    await assert.rejects(pushImage(image, berth.url, 'xing/anon:v1'), /unauthorized|401|authentication required/i);
    assert.deepEqual(await harborWrites('xing/anon'), []);
    await pushImage(image, berth.url, 'xing/pushed:v1', { username: 'dev', password: 'dev-secret' });
    const writes = await harborWrites('xing/pushed');
    // Harbor requires basic auth for every request: a 201 means berth pushed with its own account.
    assert.ok(
      writes.some((w) => w.method === 'PUT' && w.uri.includes('/manifests/v1') && w.status === 201),
      JSON.stringify(writes),
    );
  } finally {
    await berth.stop();
  }
});

test('an untrusted Harbor certificate is a trust error, not an outage: start-up check, /readyz, doctor and every client name the certificate and proxy.ca', async () => {
  const berth = await startBerth({ config: seedConfig({}, { log: { level: 'debug', fields: { service: 'registry' } } }) });
  try {
    const tlsLine = async () => (await berth.logLines()).find((l) => l['check'] === 'tls');
    await waitFor(async () => (await tlsLine()) !== undefined, 20_000, { what: 'the start-up TLS check line' });
    const line = (await tlsLine())!;
    assert.equal(line['level'], 50);
    assert.match(
      String(line['msg']),
      /certificate of harbor\.xing\.com:\d+ \(subject CN=harbor\.xing\.com; issuer itself, self-signed.*not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\)/,
    );
    assert.match(String(line['fix']), /set proxy\.ca to a PEM file holding this certificate/);
    for (const check of ['dns', 'connect'])
      assert.ok(
        (await berth.logLines()).some((l) => l['check'] === check && l['level'] === 30),
        `${check} line`,
      );

    const ready = (await (await request(`${berth.url}/readyz`)).body.json()) as { ready: boolean; upstreams: Array<{ problems: string[] }> };
    assert.equal(ready.ready, true, 'berth still serves its cache');
    assert.match(ready.upstreams[0]!.problems[0]!, /not trusted.*fix: set proxy\.ca/);
    const api = (await (await request(`${berth.url}/api/v1/upstreams`)).body.json()) as Array<{ state: string; checks: Array<{ check: string; ok: boolean }> }>;
    assert.deepEqual(
      api[0]!.checks.map((c) => [c.check, c.ok]),
      [
        ['dns', true],
        ['connect', true],
        ['tls', false],
      ],
    );

    const cause = /certificate of harbor\.xing\.com.*not trusted.*proxy\.ca/s;
    await assert.rejects(docker.pull(`${berth.host}/${REPO}:v1`), cause, 'docker shows the cause');
    await assert.rejects(skopeoPull(`${berth.host}/${REPO}:v1`, pullDir()), cause, 'skopeo shows the cause');
    await assert.rejects(ctrd.pull(`${HARBOR_NAME}/${REPO}:v1`, { hostsDir: await hostsDirFor(berth) }), cause, 'ctr shows the cause');
    for (let i = 0; i < 3; i++) await assert.rejects(skopeoPull(`${berth.host}/${REPO}:v1`, pullDir()), cause);
    const after = (await (await request(`${berth.url}/api/v1/upstreams`)).body.json()) as Array<{ state: string }>;
    assert.equal(after[0]!.state, 'up', 'trust errors never open the circuit breaker');

    const doctor = berthCli(['doctor', '--config', berth.configFile]);
    assert.equal(doctor.status, 1, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /FAIL tls .*CN=harbor\.xing\.com.*DEPTH_ZERO_SELF_SIGNED_CERT/);
    assert.match(doctor.stdout, /fix: set proxy\.ca to a PEM file/);
    // Docker tries TLS first on a plain port; that is not worth an info line per pull.
    const lines = await berth.logLines();
    assert.ok(
      lines.some((l) => l['level'] === 20 && String(l['msg']).startsWith('refused a TLS handshake on a plain-HTTP port')),
      'Docker did probe TLS',
    );
    assert.ok(!lines.some((l) => Number(l['level']) >= 30 && /HTTP parser|TLS handshake/.test(String(l['msg']))));
  } finally {
    await berth.stop();
  }
});

test('ca: harbor.crt as is (CN-only, self-signed) with resolve: every check passes, doctor exits 0, docker, skopeo and ctr pull, Harbor sends each layer once', async () => {
  const berth = await startBerth({ config: seedConfig({ ca: harbor.certFile }) });
  try {
    await waitFor(async () => (await berth.logLines()).some((l) => l['check'] === 'credentials'), 20_000, { what: 'start-up checks' });
    const checks = (await berth.logLines()).filter((l) => typeof l['check'] === 'string');
    assert.deepEqual(
      checks.map((l) => [l['check'], l['level']]),
      [
        ['dns', 30],
        ['connect', 30],
        ['tls', 30],
        ['loop', 30],
        ['credentials', 30],
      ],
    );
    const doctor = berthCli(['doctor', '--config', berth.configFile]);
    assert.equal(doctor.status, 0, doctor.stdout);
    assert.match(doctor.stdout, /ok {3}credentials +https:\/\/harbor\.xing\.com:\d+ accepts user "admin"/);
    assert.match(doctor.stdout, /no problems found/);

    assert.equal(await docker.pull(`${berth.host}/${REPO}:v1`), image.manifestDigest);
    assert.equal((await skopeoPull(`${berth.host}/${REPO}:v1`, pullDir())).manifestDigest, image.manifestDigest);
    await ctrd.pull(`${HARBOR_NAME}/${REPO}:v1`, { hostsDir: await hostsDirFor(berth) });
    assert.ok((await ctrd.images()).some((i) => i.digest === image.manifestDigest));
    const layerGets = (await harbor.registry.requests()).filter((r) => r.method === 'GET' && r.uri.includes(image.layers[0]!.digest) && r.status === 200);
    assert.equal(layerGets.length, 1, 'one copy across three nodes');

    const wrong = await configFile(seedConfig({ ca: harbor.certFile, password: 'wrong' }));
    const bad = berthCli(['doctor', '--config', wrong]);
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /FAIL credentials .*rejected user "admin"/);
  } finally {
    await berth.stop();
  }
});

test('NODE_EXTRA_CA_CERTS also makes berth trust harbor.crt', async () => {
  const berth = await startBerth({ config: seedConfig(), env: { NODE_EXTRA_CA_CERTS: harbor.certFile } });
  try {
    assert.equal((await skopeoPull(`${berth.host}/${REPO}:v1`, pullDir())).manifestDigest, image.manifestDigest);
  } finally {
    await berth.stop();
  }
});

test('an upstream that is this berth itself: found at start, each request fails at once saying so, doctor names it', async () => {
  const port = await freePort();
  const berth = await startBerth({ port, config: { version: 0.1, proxy: { remoteurl: `http://${HARBOR_NAME}:${port}`, resolve: '127.0.0.1' } } });
  try {
    await waitFor(async () => (await berth.logLines()).some((l) => l['check'] === 'loop'), 20_000, { what: 'the loop check line' });
    const line = (await berth.logLines()).find((l) => l['check'] === 'loop')!;
    assert.equal(line['level'], 50);
    assert.match(String(line['msg']), /is this berth itself/);
    await assert.rejects(skopeoPull(`${berth.host}/${REPO}:v1`, pullDir(), { timeoutMs: 20_000 }), /is this berth itself.*set proxy\.resolve/s);
    await assert.rejects(docker.pull(`${berth.host}/${REPO}:v1`), /is this berth itself/);
    const doctor = berthCli(['doctor', '--config', berth.configFile]);
    assert.equal(doctor.status, 1);
    assert.match(doctor.stdout, /FAIL loop +upstream default .* is this berth itself/);
  } finally {
    await berth.stop();
  }
});

test("the likely loop mistake: the cache host pins harbor.xing.com to berth (TLS from berth's own CA) with ca: harbor.crt still set; skopeo, the log and doctor name the loop and one fix, never proxy.ca", async () => {
  const tlsDir = path.join(work, `tls-${n++}`);
  const generated = berthCli(['cert', 'generate', '--host', HARBOR_NAME, '--ip', '127.0.0.1', '--out', tlsDir]);
  assert.equal(generated.status, 0, generated.stderr);
  const port = await freePort();
  const config = seedConfig(
    { remoteurl: `https://${HARBOR_NAME}:${port}`, ca: harbor.certFile },
    { http: { tls: { certificate: path.join(tlsDir, 'tls.crt'), key: path.join(tlsDir, 'tls.key') } } },
  );
  const berth = await startBerth({ port, config });
  try {
    await waitFor(async () => (await berth.logLines()).some((l) => l['check'] === 'loop'), 20_000, { what: 'the loop check line' });
    const line = (await berth.logLines()).find((l) => l['check'] === 'loop')!;
    assert.match(String(line['msg']), /is this berth itself: .*issued by berth edge CA/);
    assert.ok(!(await berth.logLines()).some((l) => l['check'] === 'tls' && l['level'] === 50), 'no trust advice before the loop');
    const fix = "set proxy.resolve to the central registry's real address";
    let said = '';
    await assert.rejects(skopeoPull(`${berth.host}/${REPO}:v1`, pullDir(), { timeoutMs: 60_000 }), (err: Error) => {
      // What skopeo prints from berth's status line (its own command line says --insecure-policy).
      said = err.message.slice(err.message.indexOf('HTTP status'));
      return true;
    });
    assert.match(
      said,
      /is this berth itself: harbor\.xing\.com leads to berth through proxy\.resolve 127\.0\.0\.1 \(its certificate.*issued by berth edge CA/s,
    );
    assert.ok(said.includes(`; fix: ${fix}`), said);
    assert.doesNotMatch(said, /proxy\.ca|insecure/);
    const doctor = berthCli(['doctor', '--config', berth.configFile]);
    assert.equal(doctor.status, 1, doctor.stdout);
    assert.match(doctor.stdout, /FAIL loop +upstream default .* is this berth itself/);
    assert.ok(doctor.stdout.includes(`fix: ${fix}\n`), doctor.stdout);
    assert.doesNotMatch(doctor.stdout, /proxy\.ca/);
    // The fixture removes berth's directory on stop: keep its config.yml for the stopped case.
    const kept = path.join(work, `stopped-${n++}.yml`);
    await copyFile(berth.configFile, kept);
    await berth.stop();
    // Stopped, berth cannot answer: doctor still finds the loop at berth's own address.
    const stopped = berthCli(['doctor', '--config', kept]);
    assert.match(stopped.stdout, /FAIL loop +upstream default .* is where this berth listens/);
    assert.ok(stopped.stdout.includes(`fix: ${fix}\n`), stopped.stdout);
    assert.doesNotMatch(stopped.stdout, /ECONNREFUSED/);
  } finally {
    await berth.stop();
  }
});

test('a cause too long for the status line loses its middle, never its fix: skopeo and ctr print the fix whole', async () => {
  // A self-signed certificate with a long subject, as some corporate CAs issue: the cause alone nears the limit.
  const long = createCa(`${'Xing Registry Platform Europe West '.repeat(7)}Issuing`, 30);
  const server = createHttpsServer({ cert: long.cert, key: long.key }, (_req, res) => res.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const berth = await startBerth({ config: seedConfig({ remoteurl: `https://${HARBOR_NAME}:${port}` }) });
  try {
    const fix = '; fix: set proxy.ca to a PEM file holding this certificate (a self-signed harbor.crt works as is)';
    const shown = async (p: Promise<unknown>) => {
      let said = '';
      await assert.rejects(p, (err: Error) => {
        said = err.message;
        return true;
      });
      return said;
    };
    const skopeo = await shown(skopeoPull(`${berth.host}/${REPO}:v1`, pullDir(), { timeoutMs: 60_000 }));
    const ctr = await shown(ctrd.pull(`${HARBOR_NAME}/${REPO}:v1`, { hostsDir: await hostsDirFor(berth) }));
    for (const [client, said] of [
      ['skopeo', skopeo],
      ['ctr', ctr],
    ] as const) {
      assert.match(
        said,
        /502 Bad Gateway: upstream default \(https:\/\/harbor\.xing\.com:\d+\): the certificate of .*\.\.\..*\(DEPTH_ZERO_SELF_SIGNED_CERT\)/,
        client,
      );
      assert.ok(said.includes(fix), `${client} prints the fix whole: ${said}`);
    }
  } finally {
    await berth.stop();
    await new Promise((r) => server.close(r));
  }
});

test('doctor on a cache host where the name does not resolve, then with the hosts-file entry (per-namespace hosts files)', async () => {
  const file = await configFile(seedConfig({ ca: harbor.certFile, resolve: undefined }));
  const bare = await startNetns('10.213.0.5', { hosts: [] });
  try {
    const r = await run(bare.exec[0]!, [...bare.exec.slice(1), process.execPath, BERTH_BIN, 'doctor', '--config', file]).catch(
      (e: { stdout?: string; code?: number }) => e,
    );
    assert.equal((r as { code?: number }).code, 1);
    assert.match(String(r.stdout), /FAIL dns +the name harbor\.xing\.com does not resolve/);
    assert.match(
      String(r.stdout),
      /fix: set proxy\.resolve to the central registry's address, or add it to the cache host's hosts file \(in a container: --add-host or hostAliases\)/,
    );
  } finally {
    await bare.stop();
  }
  const named = await startNetns('10.213.0.5', { hosts: [`10.213.0.5 ${HARBOR_NAME}`] });
  try {
    await named.forward(harbor.registry.port, harbor.registry.port);
    const r = await run(named.exec[0]!, [...named.exec.slice(1), process.execPath, BERTH_BIN, 'doctor', '--config', file]);
    assert.match(r.stdout, /ok {3}dns +harbor\.xing\.com resolves to 10\.213\.0\.5/);
    assert.match(r.stdout, /no problems found/);
  } finally {
    await named.stop();
  }
});

test("a token-auth upstream: the start-up checks ask its token realm with berth's credentials; doctor reports a rejected password", async () => {
  const central = await startRegistry({ auth: 'token', users: { [HARBOR_CREDS.username]: HARBOR_CREDS.password } });
  const berth = await startBerth({ config: { version: 0.1, proxy: { remoteurl: central.url, ...HARBOR_CREDS } } });
  try {
    await waitFor(async () => (await berth.logLines()).some((l) => l['check'] === 'credentials'), 20_000, { what: 'start-up checks' });
    const lines = (await berth.logLines()).filter((l) => typeof l['check'] === 'string');
    assert.deepEqual(
      lines.map((l) => [l['check'], l['level']]),
      [
        ['dns', 30],
        ['connect', 30],
        ['loop', 30],
        ['token', 30],
        ['credentials', 30],
      ].filter(([c]) => c !== 'dns'),
    );
    assert.match(String(lines.find((l) => l['check'] === 'credentials')!['msg']), /issued a token for user "admin"/);
    const wrong = await configFile({ version: 0.1, proxy: { remoteurl: central.url, username: HARBOR_CREDS.username, password: 'wrong' } });
    // Not spawnSync: the token issuer runs in this process and must keep answering.
    const r = await run(process.execPath, [BERTH_BIN, 'doctor', '--config', wrong]).then(
      () => ({ code: 0, stdout: '' }),
      (e: { code: number; stdout: string }) => e,
    );
    assert.equal(r.code, 1);
    assert.match(r.stdout, /ok {3}token +token realm http:\/\/127\.0\.0\.1:\d+\/\S* answers/);
    assert.match(r.stdout, /FAIL credentials +token realm .* rejected user "admin" \(401\)/);
  } finally {
    await berth.stop();
    await central.stop();
  }
});

test("config check prints config.yml's own keys and units", async () => {
  const r = berthCli(['config', 'check', await configFile(seedConfig({ ca: harbor.certFile, tagttl: '90s' }))]);
  assert.equal(r.status, 0, r.stderr);
  for (const want of [
    /^ {4}rootdirectory: /m,
    /^ {2}remoteurl: https:\/\/harbor\.xing\.com:\d+$/m,
    /^ {2}tagttl: 90s$/m,
    /^ {2}resolve: 127\.0\.0\.1$/m,
    /^ {2}addr: :5000$/m,
    /^ {6}age: 1h$/m,
  ])
    assert.match(r.stdout, want);
  for (const internal of ['ageMs', 'tagttlMs', 'upstreamTimeouts', 'Harbor12345', 'deleteEnabled']) assert.ok(!r.stdout.includes(internal), internal);
});
