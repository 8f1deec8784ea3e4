/**
 * @module e2e/hub-durable.test — a hub berth process that is killed (SIGKILL, then SIGTERM) in the
 * middle of a Harbor pre-heat keeps the job's id, state and every site's part, shows every site at
 * once after the restart, and finishes the job SUCCESS. Sites are simulated by the test: they send
 * the polls and results a site sends, so the test decides when each finishes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { HUB_TOKEN, hubCall, pollUntil } from '../fixtures/fleet.js';
import { SimulatedSite } from '../fixtures/simulated-site.js';
import { freePort, makeTempDir, removeDir, sleep, waitFor } from '../fixtures/proc.js';

const INTERVAL_MS = 300;
const MANIFEST_URL = 'https://harbor.xing.com/v2/library/app/manifests/v1';

let work: string;
let port: number;
let hub: Berth;
const sites = [
  new SimulatedSite('site-1', '', true, INTERVAL_MS),
  new SimulatedSite('site-2', '', false, INTERVAL_MS),
  new SimulatedSite('site-3', '', false, INTERVAL_MS),
];

const startHubOn = () => startBerth({ config: { version: 0.1, hub: { token: HUB_TOKEN } }, root: path.join(work, 'hub-store'), port });
const sitesList = async (query = '') => hubCall(hub.url, 'GET', `/api/v1/sites${query}`);
const harborJob = async (id: number) => (await hubCall(hub.url, 'GET', `/oapi/v1/jobs/${id}`)).json;
const successes = (job: { result: { job_states: Array<{ results: Array<{ success_tasks: Array<{ hostname: string }> }> }> } }) =>
  job.result.job_states[0]!.results[0]!.success_tasks.map((t) => t.hostname).sort();

before(async () => {
  work = await makeTempDir('berth-e2e-hub-durable-');
  port = await freePort();
  hub = await startHubOn();
  for (const s of sites) {
    s.hub = hub.url;
    s.start();
  }
  await waitFor(async () => ((await sitesList()).json as unknown[]).length === sites.length, 10_000, { what: 'every site reported' });
});

after(async () => {
  await Promise.all(sites.map((s) => s.pause()));
  await hub?.stop();
  await removeDir(work);
});

test('a pre-heat job survives SIGKILL and SIGTERM of the hub with its id, state and parts, and finishes SUCCESS', async () => {
  const made = await hubCall(hub.url, 'POST', '/oapi/v1/jobs', { type: 'preheat', args: { type: 'image', url: MANIFEST_URL } });
  assert.equal(made.status, 200, JSON.stringify(made.json));
  const id = made.json.id as number;
  assert.equal(made.json.state, 'PENDING');
  // site-1 finishes at once; site-2 and site-3 hold their parts.
  await pollUntil(hub.url, `/oapi/v1/jobs/${id}`, (j) => successes(j).includes('site-1'), 10_000);
  await waitFor(() => sites.every((s) => s.received.length === 1), 10_000, { what: 'every site took its task' });
  await Promise.all(sites.map((s) => s.pause()));
  const before = await sitesList();
  await hub.kill('SIGKILL');
  // Longer than three intervals: a hub counting silence from before it started would call every site stale.
  await sleep(INTERVAL_MS * 5);
  hub = await startHubOn();

  // Before any site polls again: the whole sites view, every site up, the job as it was.
  const after = await sitesList();
  assert.deepEqual(
    (after.json as Array<{ name: string; state: string }>).map((s) => [s.name, s.state]),
    sites.map((s) => [s.name, 'up']),
  );
  // A site whose report did not change has its last-poll time written once a second (SIGTERM writes it at once).
  const lag = (after.json as Array<{ lastReport: string }>).map(
    (s, i) => Date.parse((before.json as Array<{ lastReport: string }>)[i]!.lastReport) - Date.parse(s.lastReport),
  );
  assert.ok(
    lag.every((ms) => ms >= 0 && ms <= 1_100),
    `each site keeps the time of its last report, at most a second behind: ${lag.join(', ')} ms`,
  );
  const kept = await harborJob(id);
  assert.equal(kept.id, id);
  assert.equal(kept.state, 'PENDING');
  assert.deepEqual(successes(kept), ['site-1']);
  assert.equal(kept.result.job_states[0].results[0].failure_tasks.length, 0, 'no part failed for the restart');

  // site-2 still works on its task; site-3 restarted too and lost it, so the hub hands it out again.
  sites[2]!.forget();
  for (const s of sites) s.start();
  await waitFor(() => sites[2]!.received.length === 2, 10_000, { what: 'site-3 given its task again' });
  assert.equal(sites[1]!.received.length, 1, 'a site still working on its task is not given it twice');
  sites[1]!.release.add(`${id}/site-2`);
  await pollUntil(hub.url, `/oapi/v1/jobs/${id}`, (j) => successes(j).includes('site-2'), 10_000);

  await Promise.all(sites.map((s) => s.pause()));
  await hub.kill('SIGTERM');
  hub = await startHubOn();
  for (const s of sites) s.start();
  sites[2]!.release.add(`${id}/site-3`);
  const done = await pollUntil(hub.url, `/oapi/v1/jobs/${id}`, (j) => j.state !== 'PENDING', 10_000);
  assert.equal(done.json.state, 'SUCCESS', JSON.stringify(done.json.result));
  assert.deepEqual(successes(done.json), ['site-1', 'site-2', 'site-3']);

  const next = await hubCall(hub.url, 'POST', '/oapi/v1/jobs', { type: 'preheat', args: { type: 'image', url: MANIFEST_URL } });
  assert.ok((next.json.id as number) > id, `a new job's id (${next.json.id}) follows the old one (${id})`);
  const v1 = await hubCall(hub.url, 'GET', `/preheats/${id}`);
  assert.equal(v1.json.Status, 'SUCCESS');
});

test('the sites and jobs views page with a cursor, filter, count by state, and refuse bad parameters naming them', async () => {
  const first = await sitesList('?limit=2');
  assert.deepEqual(
    (first.json as Array<{ name: string }>).map((s) => s.name),
    ['site-1', 'site-2'],
  );
  const link = /^<([^>]+)>; rel="next"$/.exec(String(first.headers['link']));
  assert.ok(link, `Link header: ${String(first.headers['link'])}`);
  const second = await hubCall(hub.url, 'GET', link[1]!);
  assert.deepEqual(
    (second.json as Array<{ name: string }>).map((s) => s.name),
    ['site-3'],
  );
  assert.equal(second.headers['link'], undefined, 'no next page after the last');
  assert.deepEqual(
    ((await sitesList('?prefix=site-2')).json as Array<{ name: string }>).map((s) => s.name),
    ['site-2'],
  );
  assert.deepEqual(((await sitesList('?state=stale')).json as unknown[]).length, 0);
  assert.deepEqual((await hubCall(hub.url, 'GET', '/api/v1/sites/summary')).json, { total: 3, up: 3, stale: 0 });

  const jobs = await hubCall(hub.url, 'GET', '/api/v1/fleet/jobs?state=SUCCESS&limit=5');
  assert.equal(jobs.status, 200);
  assert.ok((jobs.json as Array<{ state: string; parts: { success: number } }>).every((j) => j.state === 'SUCCESS' && j.parts.success === 3));
  const summary = (await hubCall(hub.url, 'GET', '/api/v1/fleet/jobs/summary')).json as { total: number; SUCCESS: number };
  assert.equal(summary.total, 2);
  assert.ok(summary.SUCCESS >= 1);

  for (const [query, param] of [
    ['?limit=0', 'limit'],
    ['?limit=abc', 'limit'],
    ['?state=down', 'state'],
    ['?colour=red', 'colour'],
  ] as const) {
    const r = await sitesList(query);
    assert.equal(r.status, 400, query);
    assert.match(r.json.errors[0].message, new RegExp(`"${param}"`), query);
  }
  const badCursor = await hubCall(hub.url, 'GET', '/api/v1/fleet/jobs?cursor=x');
  assert.equal(badCursor.status, 400);
  assert.match(badCursor.json.errors[0].message, /"cursor"/);
});
