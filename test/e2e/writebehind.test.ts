/** @module e2e/writebehind.test — write-behind through outages: pushes accepted while the central registry is down, the queue drains when it is back, survives SIGKILL, newer local pushes win. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { skopeoPull } from '../fixtures/clients.js';
import { startRelay, type Relay } from '../fixtures/relay.js';
import { makeTempDir, removeDir, waitFor } from '../fixtures/proc.js';
import { assertSameImage, berthQueue, pushModesConfig, queuedJobs, waitForDrain } from '../fixtures/push.js';
import { call } from '../fixtures/oci-http.js';

const creds = { username: 'admin', password: 'Harbor12345' };
let registry: Registry;
let relay: Relay;
let berth: Berth;
let work: string;
let config: Record<string, unknown>;
const images: BuiltImage[] = [];
const leftovers: Array<() => Promise<void>> = [];

before(async () => {
  work = await makeTempDir('berth-e2e-wb-');
  registry = await startRegistry({ auth: 'token', users: { [creds.username]: creds.password } });
  // berth reaches the registry through a relay: a WAN link the tests can slow down or cut.
  relay = await startRelay({ targetPort: registry.port });
  // A store smaller than one image: content waiting for replication must survive eviction.
  config = pushModesConfig(work, relay.url, creds, { storage: { maxsize: '1MiB' } });
  berth = await startBerth({ config });
});

after(async () => {
  await berth?.stop();
  for (const l of leftovers) await l();
  await relay?.stop();
  await registry?.stop();
  for (const i of images) await i.remove();
  await removeDir(work);
});

async function image(layers: number, layerSize: number): Promise<BuiltImage> {
  const built = await buildImage({ layers, layerSize, tag: 'v1' });
  images.push(built);
  return built;
}

let pulls = 0;
const pullFrom = (ref: string, withCreds = false) => skopeoPull(ref, path.join(work, `pull-${pulls++}`), withCreds ? { creds } : {});

/** Registry log entries of completed blob uploads (PUT ...?digest=, 201) for a repository, per digest. */
async function completedUploads(repo: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const r of await registry.requests()) {
    if (r.method !== 'PUT' || r.status !== 201 || !r.uri.startsWith(`/v2/${repo}/blobs/uploads/`)) continue;
    const digest = decodeURIComponent(/[?&]digest=([^&]+)/.exec(r.uri)?.[1] ?? '');
    counts.set(digest, (counts.get(digest) ?? 0) + 1);
  }
  return counts;
}

test('registry down: the push is accepted and pulls from berth; registry back: the queue drains and the registry holds the image', async () => {
  const img = await image(2, 1024 * 1024);
  await registry.down();
  try {
    assert.equal(await pushImage(img, berth.url, 'behind/xing/outage:v1'), img.manifestDigest);
    const fromBerth = await pullFrom(`${berth.host}/behind/xing/outage:v1`);
    assert.equal(fromBerth.manifestDigest, img.manifestDigest);
    const jobs = queuedJobs(berth);
    assert.deepEqual(jobs.map((j) => j.kind).sort(), ['blob', 'blob', 'blob', 'manifest', 'tag']);
    // The same entries in the admin API (the dashboard's queue page) and the depth in /metrics.
    const api = await call(berth.url, 'GET', '/api/v1/queue');
    assert.deepEqual(
      api.json<Array<{ id: number; kind: string; tag: string | null }>>().map((e) => [e.id, e.kind, e.tag]),
      jobs.map((j) => [j.id, j.kind, j.tag]),
    );
    assert.match((await call(berth.url, 'GET', '/metrics')).body.toString(), /^berth_queue_depth 5$/m);
    await waitFor(() => queuedJobs(berth).some((j) => j.lastError !== null), 30_000, { what: 'a failed replication attempt' });
    const listing = berthQueue(berth);
    assert.equal(listing.status, 0);
    assert.match(listing.stdout, /pending/);
    assert.match(listing.stdout, /tag v1 -> sha256:/);
    assert.match(listing.stdout, /unreachable|ECONNRESET|socket|closed/);
    // Over maxsize, yet nothing queued was evicted: a second pull still comes from berth alone.
    assert.equal((await pullFrom(`${berth.host}/behind/xing/outage@${img.manifestDigest}`)).manifestDigest, img.manifestDigest);
  } finally {
    await registry.up();
  }
  const upAt = Date.now();
  await waitForDrain(berth);
  const drainMs = Date.now() - upAt;
  const direct = await pullFrom(`${registry.host}/xing/outage:v1`, true);
  assert.equal(direct.manifestDigest, img.manifestDigest);
  assert.deepEqual(direct.blobs.map((b) => b.digest).sort(), img.blobs.map((b) => b.digest).sort());
  for (const [digest, n] of await completedUploads('xing/outage')) assert.equal(n, 1, `${digest} uploaded ${n} times`);
  process.stdout.write(`# queue drained ${drainMs} ms after the registry came back\n`);
});

test('SIGKILL mid-replication: after a restart replication resumes and completes, nothing duplicated or lost', async () => {
  const img = await image(3, 2 * 1024 * 1024);
  relay.configure({ upRateBytesPerSec: 2 * 1024 * 1024 });
  await pushImage(img, berth.url, 'behind/xing/killed:v1');
  // Killed once the first layer is at the registry and the rest is still on the (slow) way.
  await waitFor(async () => (await completedUploads('xing/killed')).size >= 1, 60_000, { intervalMs: 50, what: 'a first replicated blob' });
  await berth.kill('SIGKILL');
  assert.ok((await completedUploads('xing/killed')).size < img.blobs.length, 'the kill must land mid-replication');
  relay.configure({ upRateBytesPerSec: 0 });
  // The store lives in the killed berth's temp dir: keep it, and remove it at the end.
  const killed = berth;
  berth = await startBerth({ config, root: killed.root });
  leftovers.push(() => killed.cleanup());
  await waitForDrain(berth);
  const direct = await pullFrom(`${registry.host}/xing/killed:v1`, true);
  assertSameImage(direct, await pullFrom(`${berth.host}/behind/xing/killed:v1`));
  assert.equal(direct.manifestDigest, img.manifestDigest);
  const uploads = await completedUploads('xing/killed');
  for (const b of img.blobs) assert.ok((uploads.get(b.digest) ?? 0) <= 1, `${b.digest} uploaded ${uploads.get(b.digest)} times`);
});

test('SIGTERM mid-replication: berth exits 0, and the next start finishes the job', async () => {
  const img = await image(2, 2 * 1024 * 1024);
  relay.configure({ upRateBytesPerSec: 1024 * 1024 });
  await pushImage(img, berth.url, 'behind/xing/stopped:v1');
  await waitFor(() => queuedJobs(berth).some((j) => j.state === 'running' && j.kind === 'blob'), 30_000, { intervalMs: 50, what: 'a running replication' });
  const stopped = berth;
  const exit = await stopped.service.stop(20_000);
  assert.deepEqual(exit, { code: 0, signal: null });
  leftovers.push(() => stopped.cleanup());
  relay.configure({ upRateBytesPerSec: 0 });
  berth = await startBerth({ config, root: stopped.root });
  await waitForDrain(berth);
  assert.equal((await pullFrom(`${registry.host}/xing/stopped:v1`, true)).manifestDigest, img.manifestDigest);
});

test('a tag moved upstream after the push was queued: the newer local push wins and the overwritten digest is logged', async () => {
  const local = await image(1, 64 * 1024);
  const direct = await image(1, 64 * 1024);
  relay.configure({ refuse: true });
  relay.dropAll();
  try {
    await pushImage(local, berth.url, 'behind/xing/conflict:v1');
    await pushImage(direct, registry.url, 'xing/conflict:v1', creds);
  } finally {
    relay.configure({ refuse: false });
  }
  await waitForDrain(berth);
  assert.equal((await pullFrom(`${registry.host}/xing/conflict:v1`, true)).manifestDigest, local.manifestDigest);
  const logged = (await berth.logLines()).find(
    (l) => l['msg'] === 'tag moved upstream after the local push was queued; the newer local push wins and overwrites it',
  );
  assert.ok(logged, 'the overwrite must be logged');
  assert.equal(logged['overwritten'], direct.manifestDigest);
  assert.equal(logged['digest'], local.manifestDigest);
});

test('berth queue: retry and drop by id; a dropped tag job never reaches the registry', async () => {
  const img = await image(1, 64 * 1024);
  relay.configure({ refuse: true });
  relay.dropAll();
  try {
    await pushImage(img, berth.url, 'behind/xing/dropped:v1');
    const tagJob = queuedJobs(berth).find((j) => j.kind === 'tag' && j.repository === 'xing/dropped');
    assert.ok(tagJob);
    assert.deepEqual(tagJob.waitingFor.length, 1, 'the tag waits for its manifest');
    const retried = berthQueue(berth, ['retry', String(tagJob.waitingFor[0])]);
    assert.equal(retried.status, 0, retried.stderr);
    const dropped = berthQueue(berth, ['drop', String(tagJob.id)]);
    assert.equal(dropped.status, 0, dropped.stderr);
    assert.match(dropped.stdout, /tag v1/);
    assert.ok(!queuedJobs(berth).some((j) => j.id === tagJob.id));
    const unknown = berthQueue(berth, ['drop', '999999']);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no queued job 999999/);
  } finally {
    relay.configure({ refuse: false });
  }
  await waitForDrain(berth);
  const seen = (await registry.requests()).filter((r) => r.uri.startsWith('/v2/xing/dropped/manifests/'));
  assert.ok(
    seen.some((r) => r.method === 'PUT' && r.uri.endsWith(img.manifestDigest)),
    'the manifest itself was replicated by digest',
  );
  assert.ok(!seen.some((r) => r.method === 'PUT' && r.uri.endsWith('/v1')), 'the dropped tag was not');
});
