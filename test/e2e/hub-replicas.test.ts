/**
 * @module e2e/hub-replicas.test — two hub berth processes on one redis-server: either answers Harbor
 * and any site (the one not leading forwards to the lead after its own token check); the lead is
 * SIGKILLed mid-job and the other takes over from the state in Redis: the job keeps its id, no part
 * fails or is lost, and it finishes SUCCESS. Sites are simulated by the test, as in hub-durable.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { HUB_TOKEN, hubCall, pollUntil } from '../fixtures/fleet.js';
import { freePort, sleep, waitFor } from '../fixtures/proc.js';
import { startRedis, type RedisServer } from '../fixtures/redis.js';
import { SimulatedSite } from '../fixtures/simulated-site.js';

const MANIFEST_URL = 'https://harbor.xing.com/v2/library/app/manifests/v1';

let redis: RedisServer;
let hubA: Berth;
let hubB: Berth;
const sites: SimulatedSite[] = [];

const startHub = async () => {
  const port = await freePort();
  const advertise = `http://127.0.0.1:${port}`;
  return startBerth({ config: { version: 0.1, hub: { token: HUB_TOKEN, advertise }, redis: { addr: redis.addr } }, port });
};
const leads = async (hub: Berth) => (await hub.logLines()).some((l) => l['msg'] === 'this hub leads; loading the hub state from Redis');
type HarborJob = {
  id: number;
  state: string;
  result: { job_states: Array<{ results: Array<{ success_tasks: Array<{ hostname: string }>; failure_tasks: unknown[] }> }> };
};
const outcome = (job: HarborJob) => job.result.job_states[0]!.results[0]!;

before(async () => {
  redis = await startRedis();
  hubA = await startHub();
  await waitFor(() => leads(hubA), 10_000, { what: 'hub A leads' });
  hubB = await startHub();
  // Polls spread over both hubs, as behind a load balancer.
  sites.push(
    new SimulatedSite('site-1', hubA.url, true),
    new SimulatedSite('site-2', hubB.url),
    new SimulatedSite('site-3', hubA.url),
    new SimulatedSite('site-4', hubB.url),
  );
  for (const s of sites) s.start();
  await waitFor(async () => ((await hubCall(hubB.url, 'GET', '/api/v1/sites')).json as unknown[]).length === sites.length, 10_000, {
    what: 'every site listed through the hub that does not lead',
  });
});

after(async () => {
  await Promise.all(sites.map((s) => s.pause()));
  await hubA?.stop();
  await hubB?.stop();
  await redis?.stop();
});

test('the hub that does not lead checks the token itself and forwards nothing unauthenticated', async () => {
  assert.equal(await leads(hubB), false);
  for (const token of [null, 'wrong']) {
    const r = await hubCall(hubB.url, 'GET', '/api/v1/fleet/jobs', undefined, token);
    assert.equal(r.status, 401, String(token));
  }
  assert.equal((await hubCall(hubB.url, 'GET', '/healthy')).status, 200);
});

test('a Harbor job survives SIGKILL of the lead hub: same id, no part lost or failed, SUCCESS through the other hub', async () => {
  const made = await hubCall(hubA.url, 'POST', '/oapi/v1/jobs', { type: 'preheat', args: { type: 'image', url: MANIFEST_URL } });
  assert.equal(made.status, 200, JSON.stringify(made.json));
  const id = made.json.id as number;
  // Harbor polls either hub.
  await pollUntil(hubB.url, `/oapi/v1/jobs/${id}`, (j: HarborJob) => outcome(j).success_tasks.some((t) => t.hostname === 'site-1'), 10_000);
  await waitFor(() => sites.every((s) => s.received.length === 1), 10_000, { what: 'every site took its task' });

  await hubA.kill('SIGKILL');
  // A load balancer sends the dead hub's traffic to the living one.
  for (const s of sites) s.hub = hubB.url;
  const gap: number[] = [];
  await waitFor(
    async () => {
      const r = await hubCall(hubB.url, 'GET', `/oapi/v1/jobs/${id}`);
      gap.push(r.status);
      if (r.status === 503) assert.ok(Number(r.headers['retry-after']) >= 1, 'a 503 says when to retry');
      return r.status === 200 && (await leads(hubB));
    },
    20_000,
    { what: 'hub B took the lead', intervalMs: 200 },
  );
  assert.ok(
    gap.every((s) => s === 200 || s === 503),
    `answers while the lead changed: ${gap.join()}`,
  );
  const kept = (await hubCall(hubB.url, 'GET', `/oapi/v1/jobs/${id}`)).json as HarborJob;
  assert.equal(kept.id, id);
  assert.equal(kept.state, 'PENDING');
  assert.deepEqual(
    outcome(kept).success_tasks.map((t) => t.hostname),
    ['site-1'],
  );
  assert.equal(outcome(kept).failure_tasks.length, 0, 'no part failed for the lost hub');

  await sleep(1_000);
  assert.ok(
    sites.slice(1).every((s) => s.received.length === 1),
    'a site still working on its task is not given it twice',
  );
  for (const s of sites.slice(1)) s.release.add(`${id}/${s.name}`);
  const done = await pollUntil(hubB.url, `/oapi/v1/jobs/${id}`, (j: HarborJob) => j.state !== 'PENDING', 15_000);
  assert.equal(done.json.state, 'SUCCESS', JSON.stringify(done.json.result));
  assert.deepEqual(
    outcome(done.json as HarborJob)
      .success_tasks.map((t) => t.hostname)
      .sort(),
    sites.map((s) => s.name),
  );

  const next = await hubCall(hubB.url, 'POST', '/oapi/v1/jobs', { type: 'preheat', args: { type: 'image', url: MANIFEST_URL } });
  assert.ok((next.json.id as number) > id, `a new job's id (${next.json.id}) follows the old one (${id})`);
});
