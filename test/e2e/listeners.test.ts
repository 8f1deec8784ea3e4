/** @module e2e/listeners.test — plain :PORT and TLS at once (http.listeners), TLS on 443 by port mapping, and Docker trusting berth through the certs.d path `berth cert generate` and `node-config` both print. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chown, copyFile, mkdir, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { BERTH_BIN, startBerth, type Berth } from '../fixtures/berth.js';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { skopeoPull, startDockerd } from '../fixtures/clients.js';
import { startNetns } from '../fixtures/netns.js';
import { freePort, makeTempDir, removeDir, run } from '../fixtures/proc.js';

const NS_ADDRESS = '10.213.0.9';
let work: string;
let tlsDir: string;
let registry: Registry;
let image: BuiltImage;
let berth: Berth;
let tlsPort: number;
let generated: string;

const cli = (args: string[]) => run(process.execPath, [BERTH_BIN, ...args]);

before(async () => {
  work = await makeTempDir('berth-e2e-listeners-');
  tlsDir = path.join(work, 'tls');
  registry = await startRegistry();
  image = await buildImage({ layers: 2, layerSize: 256 * 1024, tag: 'v1' });
  await pushImage(image, registry.url, 'xing/app:v1');
  generated = (await cli(['cert', 'generate', '--host', 'harbor.xing.com', '--ip', NS_ADDRESS, '--port', '443', '--out', tlsDir])).stdout;
  tlsPort = await freePort();
  berth = await startBerth({
    config: {
      version: 0.1,
      http: { listeners: [{ addr: `127.0.0.1:${tlsPort}`, tls: { certificate: path.join(tlsDir, 'tls.crt'), key: path.join(tlsDir, 'tls.key') } }] },
      proxy: { remoteurl: registry.url },
    },
  });
});

after(async () => {
  await berth?.stop();
  await registry?.stop();
  await image?.remove();
  await removeDir(work);
});

test('cert generate and node-config name the same Docker directory: no :port for 443, host:port otherwise', async () => {
  assert.match(generated, new RegExp(`mkdir -p /etc/docker/certs\\.d/harbor\\.xing\\.com\\n`));
  assert.match(generated, /\(harbor\.xing\.com, 10\.213\.0\.9\)/);
  assert.ok(!generated.includes('harbor.xing.com:443'), generated);
  const on5000 = (await cli(['cert', 'generate', '--host', 'harbor.xing.com', '--out', path.join(work, 'tls5000')])).stdout;
  assert.match(on5000, /mkdir -p \/etc\/docker\/certs\.d\/harbor\.xing\.com:5000\n/);
  const out = path.join(work, 'node');
  await cli([
    'node-config',
    '--mirror',
    `https://${NS_ADDRESS}`,
    '--registry',
    'docker.io',
    '--ca',
    path.join(tlsDir, 'ca.crt'),
    '--only',
    'docker',
    '--write',
    '--dir',
    out,
  ]);
  assert.ok((await stat(path.join(out, 'etc/docker/certs.d', NS_ADDRESS, 'ca.crt'))).isFile());
  // Over TLS with no Docker Hub entry there is nothing for daemon.json, so nothing to reload either.
  const nothing = (await cli(['node-config', '--mirror', `https://${NS_ADDRESS}`, '--registry', 'harbor.xing.com', '--only', 'docker'])).stdout;
  assert.match(nothing, /nothing to add to daemon\.json/);
  assert.ok(!nothing.includes('Reload dockerd'), nothing);
  assert.match(
    (await cli(['node-config', '--mirror', `http://${NS_ADDRESS}:5000`, '--registry', 'harbor.xing.com', '--only', 'docker'])).stdout,
    /Reload dockerd/,
  );
});

test('one berth serves plain HTTP on http.addr and TLS on an http.listeners entry at once', async () => {
  assert.equal((await skopeoPull(`${berth.host}/xing/app:v1`, path.join(work, 'plain'))).manifestDigest, image.manifestDigest);
  // dockerd verifies TLS only off 127.0.0.0/8: it reaches both listeners from a namespace.
  const ns = await startNetns(NS_ADDRESS);
  const certsDir = path.join('/etc/docker/certs.d', NS_ADDRESS);
  const hadRoot = await stat('/etc/docker/certs.d').then(
    () => true,
    () => false,
  );
  try {
    // 443 inside the node's network maps to berth's unprivileged TLS port: the port mapping docs/install.md shows for uid 1000.
    await ns.forward(443, tlsPort);
    await ns.forward(berth.port, berth.port);
    const docker = await startDockerd({ wrap: ns.wrap, insecureRegistries: [`${NS_ADDRESS}:${berth.port}`] });
    try {
      await assert.rejects(docker.pull(`${NS_ADDRESS}/xing/app:v1`), /x509|certificate/, 'untrusted until the CA is where cert generate said');
      await mkdir(certsDir, { recursive: true });
      await copyFile(path.join(tlsDir, 'ca.crt'), path.join(certsDir, 'ca.crt'));
      assert.equal(await docker.pull(`${NS_ADDRESS}/xing/app:v1`), image.manifestDigest, 'TLS on 443');
      assert.equal(await docker.pull(`${NS_ADDRESS}:${berth.port}/xing/app:v1`), image.manifestDigest, 'plain on http.addr, at the same time');
    } finally {
      await docker.stop();
    }
  } finally {
    await rm(certsDir, { recursive: true, force: true });
    if (!hadRoot) await rmdir('/etc/docker/certs.d').catch(() => undefined);
    await ns.stop();
  }
});

test("http.addr :443 as uid 1000 (the image's user) fails at once with a message naming the port mapping", async () => {
  // Its own temp dir: the test's work dir is private to root.
  const root = await makeTempDir('berth-uid1000-');
  await chown(root, 1000, 1000);
  const r = spawnSync(
    'setpriv',
    ['--reuid=1000', '--regid=1000', '--clear-groups', process.execPath, BERTH_BIN, 'serve', '--listen', '127.0.0.1:443', '--root', root, '--upstream', 'none'],
    { encoding: 'utf8', cwd: root, timeout: 30_000 },
  );
  await removeDir(root);
  assert.equal(r.status, 1, r.stderr + r.stdout);
  assert.match(
    r.stdout,
    /cannot listen on 127\.0\.0\.1:443: EACCES \(ports below 1024 need root or CAP_NET_BIND_SERVICE: listen on a high port and map 443 to it/,
  );
});
