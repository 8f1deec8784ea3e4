/** @module fixtures.test — smoke test: the e2e fixtures work against the real parts, without berth */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Containerd, type Dockerd, skopeoPull, startContainerd, startDockerd, writeHostsToml } from './fixtures/clients.js';
import { type BuiltImage, type BuiltIndex, buildImage, buildIndex, pushImage } from './fixtures/image.js';
import { makeTempDir, removeDir } from './fixtures/proc.js';
import { type Registry, startRegistry } from './fixtures/registry.js';
import { startRelay } from './fixtures/relay.js';
import { type TokenIssuer, startTokenIssuer } from './fixtures/token-issuer.js';

const users = { alice: 'alice-pw' };
const creds = { username: 'alice', password: 'alice-pw' };
const MiB = 1 << 20;

const sorted = (xs: string[]): string[] => [...xs].sort();

describe('e2e fixtures (no berth)', { timeout: 120_000 }, () => {
  let issuer: TokenIssuer;
  let reg: Registry;
  let image: BuiltImage;
  let index: BuiltIndex;
  const cleanups: (() => Promise<void>)[] = [];
  const tmp = async (prefix: string): Promise<string> => {
    const dir = await makeTempDir(prefix);
    cleanups.push(() => removeDir(dir));
    return dir;
  };
  const pullToken = (repo: string): string => issuer.mint('alice', [{ type: 'repository', name: repo, actions: ['pull'] }]);

  before(async () => {
    issuer = await startTokenIssuer({ users });
    reg = await startRegistry({ auth: 'token', tokenIssuer: issuer });
    image = await buildImage({ layers: 2, layerSize: 2 * MiB, tag: 'v1' });
    index = await buildIndex({ layers: 1, layerSize: MiB / 4, tag: 'multi' });
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await reg?.stop();
    await issuer?.stop();
    await image?.remove();
    await index?.remove();
  });

  it('token auth: skopeo pushes with creds, pulls back verified, and the registry counts bytes', async () => {
    assert.equal(await pushImage(image, reg.url, 'team/app:v1', creds), image.manifestDigest);
    const before = await reg.bytesSent();
    const pulled = await skopeoPull(`${reg.host}/team/app:v1`, await tmp('pull'), { creds });
    assert.equal(pulled.manifestDigest, image.manifestDigest);
    assert.deepEqual(sorted(pulled.blobs.map((b) => b.digest)), sorted(image.blobs.map((b) => b.digest)));
    const sent = (await reg.bytesSent()) - before;
    assert.ok(sent >= image.totalSize, `registry sent ${sent} < image ${image.totalSize}`);
    assert.ok((await reg.requests()).some((r) => r.method === 'GET' && r.uri.includes(image.layers[0]!.digest)));
    assert.ok(
      issuer.requests.some((r) => r.user === 'alice' && r.status === 200 && r.granted.some((g) => g.name === 'team/app' && g.actions.includes('pull'))),
    );

    await assert.rejects(skopeoPull(`${reg.host}/team/app:v1`, await tmp('pull'))); // anonymous: empty grant
    await assert.rejects(skopeoPull(`${reg.host}/team/app:v1`, await tmp('pull'), { creds: { ...creds, password: 'nope' } }));
    assert.ok(issuer.requests.some((r) => r.status === 401));
  });

  it('registry restarts on the same port and data; minted tokens work', async () => {
    await reg.restart();
    const res = await fetch(`${reg.url}/v2/team/app/manifests/v1`, {
      headers: { authorization: `Bearer ${pullToken('team/app')}`, accept: image.manifestMediaType },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), image.manifestDigest);
    const denied = await fetch(`${reg.url}/v2/team/app/manifests/v1`);
    assert.equal(denied.status, 401);
    assert.match(denied.headers.get('www-authenticate') ?? '', new RegExp(issuer.realm));
  });

  it('htpasswd auth: push and pull with basic credentials', async () => {
    const basic = await startRegistry({ auth: 'htpasswd', users });
    cleanups.push(() => basic.stop());
    await pushImage(image, basic.url, 'library/app:v1', creds);
    const pulled = await skopeoPull(`${basic.host}/library/app:v1`, await tmp('pull'), { creds });
    assert.equal(pulled.manifestDigest, image.manifestDigest);
    assert.equal(pulled.blobs.length, image.blobs.length);
    await assert.rejects(skopeoPull(`${basic.host}/library/app:v1`, await tmp('pull'), { creds: { ...creds, password: 'x' } }));
  });

  it('relay: throttles the downstream and cuts the first connection', async () => {
    const layer = image.layers[0]!;
    const relay = await startRelay({ targetPort: reg.port, rateBytesPerSec: 8 * MiB });
    cleanups.push(() => relay.stop());
    const get = async (): Promise<Buffer> => {
      const res = await fetch(`${relay.url}/v2/team/app/blobs/${layer.digest}`, {
        headers: { authorization: `Bearer ${pullToken('team/app')}` },
      });
      assert.equal(res.status, 200);
      return Buffer.from(await res.arrayBuffer());
    };
    const t0 = Date.now();
    const body = await get();
    const ms = Date.now() - t0;
    assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, layer.digest);
    assert.ok(ms >= 0.8 * (layer.size / (8 * MiB)) * 1000, `2 MiB at 8 MiB/s took only ${ms} ms`);
    assert.ok(relay.bytesToClient() >= layer.size);

    relay.configure({ rateBytesPerSec: 0, cutAfterBytes: 64 * 1024, cutConnections: 1 });
    await assert.rejects(get());
    assert.equal(relay.cuts(), 1);
    assert.equal((await get()).length, layer.size);
  });

  it('containerd pulls through a hosts.toml mirror entry (image and index)', async () => {
    const ctd: Containerd = await startContainerd();
    cleanups.push(() => ctd.stop());
    const hosts = await tmp('hosts');
    await writeHostsToml(hosts, 'harbor.xing.com', reg.url);
    await ctd.pull('harbor.xing.com/team/app:v1', { hostsDir: hosts, creds });
    await pushImage(index, reg.url, 'team/multi:v1', creds);
    await ctd.pull('harbor.xing.com/team/multi:v1', { hostsDir: hosts, creds, platform: 'linux/arm64' });
    const images = new Map((await ctd.images()).map((i) => [i.ref, i.digest]));
    assert.equal(images.get('harbor.xing.com/team/app:v1'), image.manifestDigest);
    assert.equal(images.get('harbor.xing.com/team/multi:v1'), index.manifestDigest);
    const content = await ctd.content();
    for (const b of [...image.blobs, ...index.images[1]!.blobs]) assert.ok(content.includes(b.digest), b.digest);
    assert.ok((await reg.requests()).some((r) => r.uri.endsWith('?ns=harbor.xing.com')));
  });

  it('dockerd logs in, pulls from an insecure registry and pushes', async () => {
    const dockerd: Dockerd = await startDockerd({ insecureRegistries: [reg.host] });
    cleanups.push(() => dockerd.stop());
    await dockerd.login(reg.host, creds.username, creds.password);
    assert.equal(await dockerd.pull(`${reg.host}/team/app:v1`), image.manifestDigest);
    await dockerd.tag(`${reg.host}/team/app:v1`, `${reg.host}/team/pushed:v1`);
    await dockerd.push(`${reg.host}/team/pushed:v1`);
    const res = await fetch(`${reg.url}/v2/team/pushed/manifests/v1`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${pullToken('team/pushed')}` },
    });
    assert.equal(res.status, 200);
  });
});
