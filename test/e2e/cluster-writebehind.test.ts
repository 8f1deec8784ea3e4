/** @module e2e/cluster-writebehind.test — write-behind on a site of three replicas (real redis-server, real registry, skopeo): a push acknowledged by replica A survives A's SIGKILL and reaches the centre from a survivor. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { request } from 'undici';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import type { Berth } from '../fixtures/berth.js';
import { startRedis, type RedisServer } from '../fixtures/redis.js';
import { startSite, stopSite } from '../fixtures/site.js';
import { startBalancer } from '../fixtures/balancer.js';
import { makeTempDir, removeDir, waitFor } from '../fixtures/proc.js';
import { skopeoPull } from '../fixtures/clients.js';
import { assertSameImage, pushModesConfig, queuedJobs, waitForDrain } from '../fixtures/push.js';

const SECRET = 'site-secret-for-the-write-behind-test';
let registry: Registry;
let redis: RedisServer;
let work: string;
const images: BuiltImage[] = [];
let centreDown = false;

before(async () => {
  work = await makeTempDir('berth-e2e-cluster-wb-');
  registry = await startRegistry({ auth: 'none' });
  redis = await startRedis();
});

after(async () => {
  await registry?.stop();
  await redis?.stop();
  await Promise.all(images.map((i) => i.remove()));
  await removeDir(work);
});

/** Three replicas of one site with a write-behind upstream (prefix `behind/`) naming the registry. */
function site(n = 3): Promise<Berth[]> {
  const config = pushModesConfig(work, registry.url, undefined, { log: { level: 'info' } });
  return startSite({ redisAddr: redis.addr, secret: SECRET, n, name: 'wb', config });
}

const stopAll = stopSite;

/** The digest the registry itself answers for a reference (undefined: it has none). */
async function centreDigest(repository: string, reference: string): Promise<string | undefined> {
  const res = await request(`${registry.url}/v2/${repository}/manifests/${reference}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  }).catch(() => undefined);
  if (!res) return undefined;
  await res.body.dump();
  return res.statusCode === 200 ? String(res.headers['docker-content-digest']) : undefined;
}

async function centreHasBlob(repository: string, digest: string): Promise<boolean> {
  const res = await request(`${registry.url}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' }).catch(() => undefined);
  await res?.body.dump();
  return res?.statusCode === 200;
}

/**
 * Every replica coordinates with the site: its latest word on it is "coordinating with the site"
 * (its first heartbeat and member list went through Redis). Counting entries under
 * `berth:*:members` is not enough: a replica SIGKILLed by an earlier test leaves its entry behind.
 */
async function joined(bs: Berth[]): Promise<void> {
  const coordinating = async (b: Berth) => {
    const said = (await b.logLines()).map((l) => l['msg']).filter((m) => m === 'coordinating with the site' || m === 'site coordination lost; working alone');
    return said.at(-1) === 'coordinating with the site';
  };
  await waitFor(async () => (await Promise.all(bs.map(coordinating))).every(Boolean), 30_000, { what: 'every replica in the site' });
}

test('centre down, push through A acknowledged, A SIGKILLed: B serves the image, and a survivor brings it to the centre once it is back', async () => {
  const img = await buildImage({ layers: 3, layerSize: 1024 * 1024, tag: 'v1' });
  images.push(img);
  const [a, b, c] = await site();
  try {
    await joined([a!, b!, c!]);
    await registry.down();
    centreDown = true;
    assert.equal(await pushImage(img, a!.url, 'behind/site/app:v1'), img.manifestDigest, 'the push is acknowledged while the centre is down');
    await a!.kill('SIGKILL');
    // The site's queue, as `berth queue` on a survivor shows it: everything A accepted.
    assert.deepEqual(
      queuedJobs(b!)
        .map((j) => j.kind)
        .sort(),
      ['blob', 'blob', 'blob', 'blob', 'manifest', 'tag'],
    );

    // Meanwhile: a node pulling through B gets the whole image, verified by skopeo, from the survivor holding it.
    const fromB = await skopeoPull(`${b!.host}/behind/site/app:v1`, path.join(work, 'pull-b'));
    assert.equal(fromB.manifestDigest, img.manifestDigest);
    assert.deepEqual(fromB.blobs.map((x) => x.digest).sort(), img.blobs.map((x) => x.digest).sort());
    assert.equal(await centreDigest('site/app', img.manifestDigest), undefined, 'nothing reached the centre while it was down');

    await registry.up();
    centreDown = false;
    await waitFor(async () => (await centreDigest('site/app', 'v1')) === img.manifestDigest, 180_000, {
      intervalMs: 500,
      what: 'the tag at the centre, pushed by a survivor',
    });
    await waitForDrain(c!);
    for (const blob of img.blobs) assert.ok(await centreHasBlob('site/app', blob.digest), `blob ${blob.digest} at the centre`);
    assert.equal(await centreDigest('site/app', img.manifestDigest), img.manifestDigest);
    // The centre's copy is the image, byte for byte (skopeo re-hashes every blob).
    const fromCentre = await skopeoPull(`${registry.host}/site/app:v1`, path.join(work, 'pull-centre'));
    assertSameImage(fromCentre, fromB);
    // A is dead: whatever the centre received came from B or C.
    const puts = (await registry.requests()).filter((r) => r.method === 'PUT' && r.uri.startsWith('/v2/site/app/manifests/'));
    assert.ok(puts.length >= 1, 'the manifest was PUT at the centre');
  } finally {
    if (centreDown) await registry.up();
    await stopAll([a!, b!, c!]);
  }
});

test('behind a round-robin load balancer (nginx) one push is spread over the replicas, acknowledged, brought to the centre, and served by each replica', async () => {
  const img = await buildImage({ layers: 3, layerSize: 1024 * 1024, tag: 'v1' });
  images.push(img);
  const bs = await site();
  const lb = await startBalancer(bs.map((b) => b.url));
  try {
    await joined(bs);
    // skopeo as a node's operator runs it, through the site's one address.
    assert.equal(await pushImage(img, lb.url, 'behind/site/lb:v1'), img.manifestDigest);
    const uploads = (await lb.requests()).filter((r) => r.path.startsWith('/v2/behind/site/lb/blobs/uploads'));
    assert.ok(new Set(uploads.map((r) => r.upstream)).size >= 2, `the upload requests went to more than one replica: ${JSON.stringify(uploads)}`);
    await waitFor(async () => (await centreDigest('site/lb', 'v1')) === img.manifestDigest, 120_000, { intervalMs: 500, what: 'the tag at the centre' });
    await waitForDrain(bs[0]!);
    const fromCentre = await skopeoPull(`${registry.host}/site/lb:v1`, path.join(work, 'pull-lb-centre'));
    assert.equal(fromCentre.manifestDigest, img.manifestDigest);
    assert.deepEqual(fromCentre.blobs.map((x) => x.digest).sort(), img.blobs.map((x) => x.digest).sort());
    for (const [i, b] of bs.entries()) {
      const pulled = await skopeoPull(`${b.host}/behind/site/lb:v1`, path.join(work, `pull-lb-${i}`));
      assertSameImage(pulled, fromCentre);
    }
  } finally {
    await lb.stop();
    await stopAll(bs);
  }
});

test('with one live replica a write-behind push is acknowledged as before and replicated by it', async () => {
  const img = await buildImage({ layers: 2, layerSize: 256 * 1024, tag: 'v1' });
  images.push(img);
  const [a] = await site(1);
  try {
    await joined([a!]);
    // The copy endpoint, like the rest of the peer endpoint, needs the cluster secret.
    const refused = await request(`${a!.url}/_berth/peer/copy`, { method: 'POST', body: '{}', headers: { authorization: 'Berth-Peer wrong' } });
    assert.equal(refused.statusCode, 401);
    assert.equal(((await refused.body.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'UNAUTHORIZED');
    assert.equal(await pushImage(img, a!.url, 'behind/site/alone:v1'), img.manifestDigest);
    await waitFor(async () => (await centreDigest('site/alone', 'v1')) === img.manifestDigest, 120_000, { intervalMs: 500, what: 'the tag at the centre' });
  } finally {
    await stopAll([a!]);
  }
});

test('Redis away: a write-behind push is still acknowledged and queued on its replica; Redis back: the jobs move to the site queue and reach the centre', async () => {
  const img = await buildImage({ layers: 2, layerSize: 512 * 1024, tag: 'v1' });
  images.push(img);
  const [a, b] = await site(2);
  try {
    await joined([a!, b!]);
    await registry.down();
    centreDown = true;
    await redis.kill();
    await waitFor(async () => (await a!.logLines()).some((l) => l['msg'] === 'site coordination lost; working alone'), 15_000, {
      what: 'A working alone',
    });
    assert.equal(await pushImage(img, a!.url, 'behind/site/redisless:v1'), img.manifestDigest, 'acknowledged without Redis');
    const local = queuedJobs(a!);
    assert.equal(local.length, 5, 'queued on A: 3 blobs, the manifest, the tag');
    assert.ok(
      local.every((j) => j.id < 0),
      "A's own queue (negative ids)",
    );

    await redis.up();
    await joined([a!, b!]);
    // Moved to the site's queue: B lists them too.
    await waitFor(() => queuedJobs(b!).filter((j) => j.repository === 'site/redisless' && j.id > 0).length === 5, 60_000, {
      intervalMs: 500,
      what: "A's jobs in the site's queue",
    });
    await registry.up();
    centreDown = false;
    await waitFor(async () => (await centreDigest('site/redisless', 'v1')) === img.manifestDigest, 180_000, { intervalMs: 500, what: 'the tag at the centre' });
    for (const blob of img.blobs) assert.ok(await centreHasBlob('site/redisless', blob.digest), `blob ${blob.digest} at the centre`);
    await waitForDrain(b!);
  } finally {
    if (centreDown) await registry.up();
    centreDown = false;
    await stopAll([a!, b!]);
  }
});
