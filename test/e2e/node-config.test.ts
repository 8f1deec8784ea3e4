/** @module e2e/node-config.test — `berth node-config` output fed to a real containerd, which pulls through a real berth. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BERTH_BIN, type Berth, startBerth } from '../fixtures/berth.js';
import { type Containerd, startContainerd } from '../fixtures/clients.js';
import { type BuiltImage, buildImage, pushImage } from '../fixtures/image.js';
import { makeTempDir, removeDir, run } from '../fixtures/proc.js';
import { type Registry, startRegistry } from '../fixtures/registry.js';

const MiB = 1 << 20;
/** A name nothing resolves: the pull can only succeed through the hosts.toml berth generated. */
const REGISTRY_NAME = 'harbor.xing.test';
const REF = `${REGISTRY_NAME}/xing/app:v1`;

const berthCli = (args: string[]) => run(process.execPath, [BERTH_BIN, ...args]);
const nodeConfig = (args: string[]) => berthCli(['node-config', ...args]);

describe('berth node-config with containerd', { timeout: 240_000 }, () => {
  let reg: Registry;
  let image: BuiltImage;
  let ctd: Containerd;
  /** berth's TLS files from `berth cert generate`: ca.crt, tls.crt, tls.key. */
  let tlsDir: string;
  const cleanups: (() => Promise<void>)[] = [];
  const tmp = async (): Promise<string> => {
    const dir = await makeTempDir('berth-nodecfg');
    cleanups.push(() => removeDir(dir));
    return dir;
  };
  /** berth mirroring the registry for the name containerd will use (routed by containerd's ?ns=). */
  const berthFor = async (extra: Record<string, unknown> = {}): Promise<Berth> => {
    const b = await startBerth({
      config: { version: 0.1, ...extra, upstreams: [{ name: 'harbor', remoteurl: reg.url, hosts: [REGISTRY_NAME] }] },
    });
    cleanups.push(() => b.stop());
    return b;
  };
  const blobGets = async () => (await reg.requests()).filter((r) => r.method === 'GET' && r.uri.includes('/blobs/'));

  before(async () => {
    reg = await startRegistry();
    image = await buildImage({ layers: 2, layerSize: MiB, tag: 'v1' });
    await pushImage(image, reg.url, 'xing/app:v1');
    ctd = await startContainerd();
    tlsDir = await tmp();
    await berthCli(['cert', 'generate', '--ip', '127.0.0.1', '--out', tlsDir]);
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await ctd?.stop();
    await reg?.stop();
    await image?.remove();
  });

  it('plain HTTP: the written hosts.toml makes containerd pull through berth, which fetches each blob once', async () => {
    const berth = await berthFor();
    const root = await tmp();
    const args = ['--mirror', berth.url, '--registry', REGISTRY_NAME, '--no-fallback', '--only', 'containerd'];
    const printed = (await nodeConfig(args)).stdout;
    const wrote = await nodeConfig([...args, '--write', '--dir', root]);
    const hostsToml = path.join(root, 'etc/containerd/certs.d', REGISTRY_NAME, 'hosts.toml');
    assert.match(wrote.stdout, new RegExp(`wrote ${hostsToml.replace(/[.]/g, '\\.')}`));
    const written = await readFile(hostsToml, 'utf8');
    assert.ok(printed.includes(written), 'printed output holds the same hosts.toml that --write wrote');

    const before = (await blobGets()).length;
    await ctd.pull(REF, { hostsDir: path.join(root, 'etc/containerd/certs.d') });
    const pulled = (await ctd.images()).find((i) => i.ref === REF);
    assert.equal(pulled?.digest, image.manifestDigest);
    const content = await ctd.content();
    for (const b of image.blobs) assert.ok(content.includes(b.digest), `containerd holds ${b.digest}`);
    // Upstream side: each blob crossed from the central registry exactly once, fetched by berth.
    const gets = (await blobGets()).slice(before);
    for (const b of image.blobs) assert.equal(gets.filter((r) => r.uri.includes(b.digest) && r.status === 200).length, 1, b.digest);
    const served = (await berth.logLines()).filter((l) => l['msg'] === 'request' && l['upstream'] === 'harbor' && l['repository'] === 'xing/app');
    assert.ok(
      served.some((l) => String(l['path']).includes('/manifests/') && l['status'] === 200),
      'berth served the manifest',
    );
    await ctd.remove(REF);
  });

  it('TLS with --ca: containerd trusts berth through the CA (from berth cert generate) copied beside hosts.toml, and fails without it', async () => {
    const caFile = path.join(tlsDir, 'ca.crt');
    const berth = await berthFor({ http: { tls: { certificate: path.join(tlsDir, 'tls.crt'), key: path.join(tlsDir, 'tls.key') } } });
    assert.match(berth.url, /^https:/);
    const withCa = await tmp();
    await nodeConfig(['--mirror', berth.url, '--registry', REGISTRY_NAME, '--no-fallback', '--ca', caFile, '--write', '--dir', withCa, '--only', 'containerd']);
    const hostDir = path.join(withCa, 'etc/containerd/certs.d', REGISTRY_NAME);
    assert.equal(await readFile(path.join(hostDir, 'berth-ca.crt'), 'utf8'), await readFile(caFile, 'utf8'));

    const withoutCa = await tmp();
    await nodeConfig(['--mirror', berth.url, '--registry', REGISTRY_NAME, '--no-fallback', '--write', '--dir', withoutCa, '--only', 'containerd']);
    await assert.rejects(ctd.pull(REF, { hostsDir: path.join(withoutCa, 'etc/containerd/certs.d'), timeoutMs: 60_000 }), /certificate|x509|tls/i);

    await ctd.pull(REF, { hostsDir: path.join(withCa, 'etc/containerd/certs.d') });
    assert.equal((await ctd.images()).find((i) => i.ref === REF)?.digest, image.manifestDigest);
    await ctd.remove(REF);
  });

  it('refuses bad arguments with exit status 2 and the fix', async () => {
    const err = await nodeConfig(['--mirror', 'http://127.0.0.1:5000', '--registry', REGISTRY_NAME, '--ca', path.join(tlsDir, 'ca.crt')]).then(
      () => undefined,
      (e: Error & { code?: number; stderr?: string }) => e,
    );
    assert.equal(err?.code, 2);
    assert.match(err?.stderr ?? '', /--ca applies to a berth served over TLS: give --mirror as https:\/\/127\.0\.0\.1:5000/);
  });
});
