/** @module e2e/tls.test — berth serving a certificate from `berth cert generate`, trusted by skopeo, containerd and dockerd through the CA file alone; an upstream over mutual TLS; reloads. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import path from 'node:path';
import { createCa, issueCertificate } from '../../src/cli/certs.js';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { BERTH_BIN, startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull, startContainerd, startDockerd, writeHostsToml } from '../fixtures/clients.js';
import { startNetns } from '../fixtures/netns.js';
import { makeTempDir, removeDir, run, waitFor } from '../fixtures/proc.js';

const NETNS_ADDRESS = '10.213.0.1';
let work: string;
let tlsDir: string;
/** Holds only ca.crt: what a node is given. */
let trustDir: string;
let upstream: Registry;
let image: BuiltImage;
let berth: Berth;
let upstreamCa: string;

const berthCli = (args: string[]) => run(process.execPath, [BERTH_BIN, ...args]);

before(async () => {
  work = await makeTempDir('berth-e2e-tls-');
  tlsDir = path.join(work, 'berth-tls');
  trustDir = path.join(work, 'trust');
  await mkdir(trustDir);

  // The central registry over HTTPS with its own private CA, requiring client certificates.
  const upCa = createCa('central test CA', 2);
  upstreamCa = upCa.cert;
  const upServer = issueCertificate(upCa, { hosts: ['localhost'], ips: ['127.0.0.1'], usage: 'server', days: 2 });
  const client = issueCertificate(upCa, { hosts: [], ips: [], usage: 'client', days: 2, commonName: 'berth-edge' });
  // Client side as skopeo reads a cert dir (ca.crt, client.cert, client.key); the server's pair elsewhere.
  const upDir = path.join(work, 'upstream');
  const serverDir = path.join(work, 'upstream-server');
  await mkdir(upDir);
  await mkdir(serverDir);
  const f = (n: string) => path.join(upDir, n);
  const s = (n: string) => path.join(serverDir, n);
  await Promise.all([
    writeFile(f('ca.crt'), upCa.cert),
    writeFile(s('server.crt'), upServer.cert),
    writeFile(s('server.key'), upServer.key),
    writeFile(f('client.cert'), client.cert),
    writeFile(f('client.key'), client.key),
  ]);
  upstream = await startRegistry({ tls: { certificate: s('server.crt'), key: s('server.key'), clientcas: [f('ca.crt')] } });
  image = await buildImage({ layers: 2, layerSize: 512 * 1024, tag: 'v1' });
  await pushImage(image, upstream.url, 'xing/app:v1', undefined, upDir);

  const out = await berthCli(['cert', 'generate', '--host', 'localhost', '--ip', '127.0.0.1', '--ip', NETNS_ADDRESS, '--out', tlsDir]);
  assert.match(out.stdout, /\/etc\/docker\/certs\.d\/localhost:5000\/ca\.crt/);
  assert.match(out.stdout, /ca = /);
  await copyFile(path.join(tlsDir, 'ca.crt'), path.join(trustDir, 'ca.crt'));
  berth = await startBerth({
    config: {
      version: 0.1,
      http: { tls: { certificate: path.join(tlsDir, 'tls.crt'), key: path.join(tlsDir, 'tls.key') } },
      proxy: { remoteurl: upstream.url, ca: f('ca.crt'), certificate: f('client.cert'), key: f('client.key') },
    },
  });
});

after(async () => {
  await berth?.stop();
  await upstream?.stop();
  await image?.remove();
  await removeDir(work);
});

test('berth cert generate: a CA and a server certificate with the SANs asked for', async () => {
  const ca = new X509Certificate(await readFile(path.join(tlsDir, 'ca.crt')));
  const server = new X509Certificate(await readFile(path.join(tlsDir, 'tls.crt')));
  assert.ok(ca.ca && !server.ca);
  assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey));
  assert.equal(server.subjectAltName, `DNS:localhost, IP Address:127.0.0.1, IP Address:${NETNS_ADDRESS}`);
  assert.deepEqual(server.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  await run('openssl', ['verify', '-CAfile', path.join(tlsDir, 'ca.crt'), path.join(tlsDir, 'tls.crt')]);
  await assert.rejects(berthCli(['cert', 'generate', '--out', path.join(work, 'none')]), /at least one --host or --ip/);
});

test('the upstream refuses clients without a certificate; berth fills through mutual TLS; skopeo trusts berth via --src-cert-dir only', async () => {
  await assert.rejects(
    new Promise((resolve, reject) => {
      https
        .get(`${upstream.url}/v2/`, { ca: upstreamCa, agent: false }, (res) =>
          res.statusCode === 200 ? resolve(res.resume()) : reject(new Error(String(res.statusCode))),
        )
        .on('error', reject);
    }),
    'the central registry requires a client certificate',
  );
  const pulled = await skopeoPull(`${berth.host}/xing/app:v1`, path.join(work, 'skopeo'), { tlsVerify: true, certDir: trustDir });
  assert.equal(pulled.manifestDigest, image.manifestDigest);
  assert.ok(
    (await upstream.requests()).some((r) => r.method === 'GET' && r.uri.includes(image.layers[0]!.digest)),
    'content came over mutual TLS',
  );
  await assert.rejects(skopeoPull(`${berth.host}/xing/app:v1`, path.join(work, 'untrusted'), { tlsVerify: true }), /x509|certificate/);
});

test('containerd trusts berth through hosts.toml ca', async () => {
  const hostsDir = path.join(work, 'hosts');
  await writeHostsToml(hostsDir, 'harbor.xing.com', `https://${berth.host}`, { ca: path.join(trustDir, 'ca.crt') });
  const node = await startContainerd();
  try {
    await node.pull('harbor.xing.com/xing/app:v1', { hostsDir });
    assert.ok((await node.images()).some((i) => i.digest === image.manifestDigest));
  } finally {
    await node.stop();
  }
});

test('dockerd trusts berth through /etc/docker/certs.d/<host:port>/ca.crt', async () => {
  // dockerd never verifies registries on 127.0.0.0/8, so it runs in a namespace reaching berth at another address.
  const ns = await startNetns(NETNS_ADDRESS);
  const registry = `${NETNS_ADDRESS}:${berth.port}`;
  const certsRoot = '/etc/docker/certs.d';
  const certsDir = path.join(certsRoot, registry);
  const hadRoot = await stat(certsRoot).then(
    () => true,
    () => false,
  );
  try {
    await ns.forward(berth.port, berth.port);
    const docker = await startDockerd({ wrap: ns.wrap });
    try {
      await assert.rejects(docker.pull(`${registry}/xing/app:v1`), /x509|certificate/, 'without the CA file dockerd refuses berth');
      await mkdir(certsDir, { recursive: true });
      await copyFile(path.join(trustDir, 'ca.crt'), path.join(certsDir, 'ca.crt'));
      assert.equal(await docker.pull(`${registry}/xing/app:v1`), image.manifestDigest);
    } finally {
      await docker.stop();
    }
  } finally {
    await rm(certsDir, { recursive: true, force: true });
    if (!hadRoot) await rmdir(certsRoot).catch(() => undefined);
    await ns.stop();
  }
});

let caPem: Buffer;

/** GET /v2/ over `agent` (false: a new connection) verified with berth's CA; what certificate the connection uses. */
function peer(agent: https.Agent | false, maxVersion?: 'TLSv1.2'): Promise<{ serial: string; san: string; reused: boolean; cipher: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(`${berth.url}/v2/`, { agent, ca: caPem, ...(maxVersion ? { maxVersion } : {}) }, (res) => {
      const socket = res.socket as TLSSocket;
      const cert = socket.getPeerCertificate();
      const cipher = socket.getCipher().standardName;
      res.resume();
      res.on('end', () => resolve({ serial: cert.serialNumber, san: cert.subjectaltname ?? '', reused: req.reusedSocket, cipher }));
    });
    req.on('error', reject);
  });
}

test('a new certificate is served after a file change or SIGHUP; open connections stay up; a broken pair is refused', async () => {
  const reloads = async () => (await berth.logLines()).filter((l) => l['msg'] === 'TLS certificate reloaded').map((l) => l['reason']);
  caPem = await readFile(path.join(trustDir, 'ca.crt'));
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await peer(agent);
    // The server's order, not the client's (Node's, like curl's, lists AES-256-GCM first).
    assert.equal(first.cipher, 'TLS_AES_128_GCM_SHA256');
    assert.match((await peer(false, 'TLSv1.2')).cipher, /^TLS_ECDHE_(RSA|ECDSA)_WITH_AES_128_GCM_SHA256$/, 'TLS 1.2 clients too');
    const out = await berthCli(['cert', 'generate', '--host', 'localhost', '--host', 'berth.edge', '--ip', '127.0.0.1', '--out', tlsDir]);
    assert.match(out.stdout, /^Reused the CA/);
    await waitFor(async () => (await reloads()).includes('file changed'), 10_000, { what: 'reload after the files changed' });
    const again = await peer(agent);
    assert.ok(again.reused, 'the open connection was kept');
    assert.equal(again.serial, first.serial, 'and still speaks with the certificate it began with');
    const fresh = await peer(false);
    assert.notEqual(fresh.serial, first.serial);
    assert.match(fresh.san, /DNS:berth\.edge/);

    berth.service.kill('SIGHUP');
    await waitFor(async () => (await reloads()).includes('SIGHUP'), 10_000, { what: 'reload on SIGHUP' });
    assert.equal((await peer(false)).cipher, 'TLS_AES_128_GCM_SHA256', 'a reloaded certificate keeps the cipher order');
    // A key that does not match the certificate: logged, the last good pair stays in use.
    await writeFile(path.join(tlsDir, 'tls.key'), issueCertificate(createCa('other', 1), { hosts: ['x'], ips: [], usage: 'server', days: 1 }).key);
    await waitFor(
      async () => (await berth.logLines()).some((l) => l['msg'] === 'TLS certificate reload failed; still serving the previous certificate'),
      10_000,
      { what: 'failed reload logged' },
    );
    assert.equal((await peer(false)).serial, fresh.serial);
    assert.equal((await peer(agent)).serial, first.serial);
  } finally {
    agent.destroy();
  }
});
