/**
 * @module e2e/fleet.test — a hub and two site berths with a real registry: Harbor's preheat API
 * in both generations, distribution's notifications, the sites list, and the hub token.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startRegistry, type Registry, type RegistryRequest } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import type { Berth } from '../fixtures/berth.js';
import { skopeoPull } from '../fixtures/clients.js';
import { makeTempDir, removeDir, waitFor } from '../fixtures/proc.js';
import { HUB_TOKEN, hubCall, pollUntil, sitesUp, startHub, startSite } from '../fixtures/fleet.js';

const users = { admin: 'Harbor12345' };
const creds = { username: 'admin', password: users.admin };
const MiB = 1 << 20;
const SITES = ['site-a', 'site-b'];
let registry: Registry;
let hub: Berth;
let sites: Berth[] = [];
let current: BuiltImage;
let old: BuiltImage;
let pushed: BuiltImage;
let late: BuiltImage;
let hooked: BuiltImage;
let work: string;
const timings: Record<string, number> = {};

before(async () => {
  work = await makeTempDir('berth-e2e-fleet-');
  hub = await startHub();
  // The registry tells the hub of every push, as a distribution `notifications:` section does.
  const notifications = [
    'notifications:',
    '  endpoints:',
    '    - name: berth-hub',
    `      url: ${JSON.stringify(`${hub.url}/api/v1/events`)}`,
    '      headers:',
    `        Authorization: [${JSON.stringify(`Bearer ${HUB_TOKEN}`)}]`,
    '      timeout: 2s',
    '      threshold: 3',
    '      backoff: 1s',
  ].join('\n');
  registry = await startRegistry({ auth: 'token', users, extraYaml: notifications });
  [current, old, pushed, late, hooked] = await Promise.all([
    buildImage({ layers: 2, layerSize: 2 * MiB, tag: 'v1' }),
    buildImage({ layers: 2, layerSize: 1 * MiB, tag: 'v1' }),
    buildImage({ layers: 1, layerSize: 1 * MiB, tag: 'v1' }),
    buildImage({ layers: 1, layerSize: 512 * 1024, tag: 'v1' }),
    buildImage({ layers: 1, layerSize: 512 * 1024, tag: 'v1' }),
  ]);
  await pushImage(current, registry.url, 'xing/current:v1', creds);
  await pushImage(old, registry.url, 'xing/old:v1', creds);
  sites = await Promise.all(SITES.map((name) => startSite(name, hub.url, { remoteurl: registry.url, ...creds })));
  await sitesUp(hub.url, SITES);
});

after(async () => {
  await Promise.all(sites.map((s) => s.stop()));
  await hub?.stop();
  await registry?.stop();
  await Promise.all([current, old, pushed, late, hooked].map((i) => i?.remove()));
  await removeDir(work);
  if (Object.keys(timings).length) process.stdout.write(`# fleet timings (ms): ${JSON.stringify(timings)}\n`);
});

const blobGets = async (img: BuiltImage): Promise<RegistryRequest[]> => {
  const wanted = new Set(img.blobs.map((b) => b.digest));
  return (await registry.requests()).filter((r) => r.method === 'GET' && r.status === 200 && wanted.has(r.uri.split('/blobs/')[1] ?? ''));
};
/** distribution's notification of a manifest push of `img` as `repo:v1`. */
const pushEnvelope = (img: BuiltImage, repo: string) => ({
  events: [
    {
      action: 'push',
      target: {
        mediaType: img.manifestMediaType,
        digest: img.manifestDigest,
        repository: repo,
        url: `${registry.url}/v2/${repo}/manifests/${img.manifestDigest}`,
        tag: 'v1',
      },
      request: { host: registry.host },
    },
  ],
});

/** Harbor's pull token: sent in `headers`, never to be used by sites. */
const harborHeaders = { Authorization: 'Bearer harbor-pull-token-not-for-sites' };

test('the hub refuses requests without its token or with a wrong one', async () => {
  for (const [method, p] of [
    ['GET', '/api/v1/sites'],
    ['POST', '/oapi/v1/jobs'],
    ['GET', '/healthy'],
    ['GET', '/_ping'],
    ['POST', '/preheats'],
    ['POST', '/api/v1/events'],
    ['POST', '/api/v1/fleet/poll'],
  ] as const) {
    for (const token of [null, 'wrong-token']) {
      const r = await hubCall(hub.url, method, p, method === 'POST' ? {} : undefined, token);
      assert.equal(r.status, 401, `${method} ${p} with ${token ?? 'no token'}`);
      assert.equal(r.json.errors[0].code, 'UNAUTHORIZED');
      assert.match(String(r.headers['www-authenticate']), /^Bearer /);
    }
  }
  assert.equal((await hubCall(hub.url, 'GET', '/healthy')).status, 200);
  assert.equal((await hubCall(hub.url, 'GET', '/_ping')).status, 200);
});

test('GET /api/v1/sites lists both sites with their report', async () => {
  const r = await hubCall(hub.url, 'GET', '/api/v1/sites');
  assert.equal(r.status, 200);
  assert.deepEqual(
    r.json.map((s: { name: string }) => s.name),
    SITES,
  );
  for (const s of r.json) {
    assert.equal(s.state, 'up');
    assert.match(s.version, /^\d+\.\d+\.\d+/);
    assert.equal(s.intervalMs, 500);
    assert.ok(Date.parse(s.lastReport) > 0);
    assert.deepEqual(
      s.upstreams.map((u: { name: string }) => u.name),
      ['default'],
    );
    assert.equal(typeof s.store.bytes, 'number');
    assert.equal(typeof s.images, 'number');
    assert.ok(Array.isArray(s.jobs));
  }
});

test('current Harbor: POST /oapi/v1/jobs reaches SUCCESS naming both sites; each site drew one copy', async () => {
  const url = `${registry.url}/v2/xing/current/manifests/v1`;
  const started = Date.now();
  const created = await hubCall(hub.url, 'POST', '/oapi/v1/jobs', {
    type: 'preheat',
    args: { type: 'image', url, tag: '', filtered_query_params: '', headers: harborHeaders, scope: 'single_seed_peer', concurrent_count: 0, timeout: 0 },
    scheduler_cluster_ids: null,
  });
  assert.equal(created.status, 200, JSON.stringify(created.json));
  assert.equal(typeof created.json.id, 'number', 'Harbor reads id as an integer');
  assert.equal(created.json.state, 'PENDING');
  assert.ok(Date.parse(created.json.created_at) > 0 && Date.parse(created.json.updated_at) > 0);
  const done = await pollUntil(hub.url, `/oapi/v1/jobs/${created.json.id}`, (j) => j.state !== 'PENDING');
  timings['preheat current API, 2 sites'] = Date.now() - started;
  assert.equal(done.json.state, 'SUCCESS', JSON.stringify(done.json));
  const result = done.json.result.job_states[0].results[0];
  assert.deepEqual(result.success_tasks.map((t: { hostname: string }) => t.hostname).sort(), SITES);
  assert.deepEqual(result.failure_tasks, []);
  assert.equal(result.success_tasks[0].url, url);
  const gets = await blobGets(current);
  assert.equal(gets.length, current.blobs.length * SITES.length, 'each blob once per site');
  assert.ok(
    (await registry.requests()).every((r) => r.user === null || r.user === 'admin'),
    'sites use their own credentials',
  );
});

test('Harbor 2.1: POST /preheats answers {ID}, GET /preheats/<id> reaches SUCCESS; a repeat is 208 Already Reported', async () => {
  const body = {
    type: 'image',
    url: `${registry.url}/v2/xing/old/manifests/v1`,
    headers: harborHeaders,
    image: 'xing/old',
    tag: 'v1',
    digest: old.manifestDigest,
  };
  const started = Date.now();
  const created = await hubCall(hub.url, 'POST', '/preheats', body);
  assert.equal(created.status, 200, JSON.stringify(created.json));
  assert.equal(typeof created.json.ID, 'string');
  const done = await pollUntil(hub.url, `/preheats/${created.json.ID}`, (j) => j.Status === 'SUCCESS' || j.Status === 'FAIL');
  timings['preheat 2.1 API, 2 sites'] = Date.now() - started;
  assert.equal(done.json.Status, 'SUCCESS', JSON.stringify(done.json));
  assert.equal(done.json.ID, created.json.ID);
  assert.ok(Date.parse(done.json.startTime) > 0 && Date.parse(done.json.finishTime) > 0);
  const again = await hubCall(hub.url, 'POST', '/preheats', body);
  assert.equal(again.status, 208);
  assert.equal(again.json.ID, created.json.ID);
  assert.equal((await blobGets(old)).length, old.blobs.length * SITES.length, 'each blob once per site');
});

test('a subset of sites through the provider endpoint path /sites/<names>/', async () => {
  const created = await hubCall(hub.url, 'POST', '/sites/site-b/oapi/v1/jobs', {
    type: 'preheat',
    args: { type: 'image', url: `${registry.url}/v2/xing/current/manifests/v1`, headers: harborHeaders },
  });
  assert.equal(created.status, 200);
  const done = await pollUntil(hub.url, `/sites/site-b/oapi/v1/jobs/${created.json.id}`, (j) => j.state !== 'PENDING');
  assert.equal(done.json.state, 'SUCCESS');
  assert.deepEqual(
    done.json.result.job_states[0].results[0].success_tasks.map((t: { hostname: string }) => t.hostname),
    ['site-b'],
  );
  const none = await hubCall(hub.url, 'POST', '/sites/nowhere-*/oapi/v1/jobs', {
    type: 'preheat',
    args: { type: 'image', url: `${registry.url}/v2/xing/current/manifests/v1` },
  });
  const failed = await hubCall(hub.url, 'GET', `/oapi/v1/jobs/${none.json.id}`);
  assert.equal(failed.json.state, 'FAILURE');
  assert.match(failed.json.result.job_states[0].error, /no site matches "nowhere-\*"/);
});

test('a missing image fails with each site named and why', async () => {
  const created = await hubCall(hub.url, 'POST', '/preheats', {
    type: 'image',
    url: `${registry.url}/v2/xing/absent/manifests/v9`,
    headers: harborHeaders,
    image: 'xing/absent',
    tag: 'v9',
  });
  const done = await pollUntil(hub.url, `/preheats/${created.json.ID}`, (j) => j.Status === 'SUCCESS' || j.Status === 'FAIL', 120_000);
  assert.equal(done.json.Status, 'FAIL');
  for (const s of SITES) assert.match(done.json.errorMsg, new RegExp(`${s}: failure \\(.*(not known|unknown|not found)`, 'i'));
});

test("distribution's notification of a manifest push warms both sites, once per digest", async () => {
  await pushImage(pushed, registry.url, 'xing/pushed:v1', creds);
  await waitFor(async () => (await blobGets(pushed)).length >= pushed.blobs.length * SITES.length, 60_000, { what: 'both sites to fetch the pushed image' });
  const jobs = (await hubCall(hub.url, 'GET', '/api/v1/fleet/jobs')).json as Array<{ source: string; digest: string; state: string }>;
  const fromEvents = jobs.filter((j) => j.source === 'event' && j.digest === pushed.manifestDigest);
  assert.equal(fromEvents.length, 1, 'one job for the digest');
  await waitFor(
    async () =>
      (await hubCall(hub.url, 'GET', '/api/v1/fleet/jobs')).json.find((j: { digest: string }) => j.digest === pushed.manifestDigest).state === 'SUCCESS',
    30_000,
  );
  // The same notification again (distribution retries) starts nothing new.
  const envelope = pushEnvelope(pushed, 'xing/pushed');
  const again = await hubCall(hub.url, 'POST', '/api/v1/events', envelope, HUB_TOKEN, 'application/vnd.docker.distribution.events.v2+json');
  assert.equal(again.status, 202);
  assert.equal(again.json.jobs[0].duplicate, true);
  assert.equal((await blobGets(pushed)).length, pushed.blobs.length * SITES.length, 'each blob once per site');
});

test('an event for a manifest not readable yet: sites retry with backoff until it is', async () => {
  const envelope = pushEnvelope(late, 'xing/late');
  const posted = await hubCall(hub.url, 'POST', '/api/v1/events', envelope);
  assert.equal(posted.status, 202);
  await new Promise((r) => setTimeout(r, 1_500));
  await pushImage(late, registry.url, 'xing/late:v1', creds);
  const id = posted.json.jobs[0].id as number;
  const done = await pollUntil(hub.url, '/api/v1/fleet/jobs', (jobs) => jobs.find((j: { id: number }) => j.id === id)?.state !== 'PENDING', 60_000);
  const job = done.json.find((j: { id: number }) => j.id === id);
  assert.equal(job.state, 'SUCCESS', JSON.stringify(job));
  assert.equal((await blobGets(late)).length, late.blobs.length * SITES.length);
});

test("Harbor's webhook (CloudEvents form) warms both sites", async () => {
  await pushImage(hooked, registry.url, 'xing/hooked:v1', creds);
  // The registry's own notification also arrives; both name the same digest, so one job runs.
  const body = {
    specversion: '1.0',
    id: 'e1',
    source: '/projects/1/webhook/policies/1',
    type: 'harbor.artifact.pushed',
    datacontenttype: 'application/json',
    time: new Date().toISOString(),
    operator: 'admin',
    data: {
      resources: [{ digest: hooked.manifestDigest, tag: 'v1', resource_url: `${registry.host}/xing/hooked:v1` }],
      repository: { name: 'hooked', namespace: 'xing', repo_full_name: 'xing/hooked', repo_type: 'private' },
    },
  };
  const r = await hubCall(hub.url, 'POST', '/api/v1/events', body, HUB_TOKEN, 'application/cloudevents+json');
  assert.equal(r.status, 202);
  await waitFor(async () => (await blobGets(hooked)).length >= hooked.blobs.length * SITES.length, 60_000, { what: 'both sites to fetch the hooked image' });
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  assert.equal((await blobGets(hooked)).length, hooked.blobs.length * SITES.length, 'once per site');
});

test('with the registry stopped, both sites serve every pre-heated image, verified', async () => {
  await registry.down();
  try {
    for (const site of sites) {
      for (const [img, repo] of [
        [current, 'xing/current'],
        [old, 'xing/old'],
        [pushed, 'xing/pushed'],
      ] as const) {
        const out = await makeTempDir('berth-fleet-pull-');
        try {
          const pulled = await skopeoPull(`${site.host}/${repo}:v1`, path.join(out, 'img'));
          assert.equal(pulled.manifestDigest, img.manifestDigest);
          assert.deepEqual(pulled.blobs.map((b) => b.digest).sort(), img.blobs.map((b) => b.digest).sort());
        } finally {
          await removeDir(out);
        }
      }
    }
  } finally {
    await registry.up();
  }
});
