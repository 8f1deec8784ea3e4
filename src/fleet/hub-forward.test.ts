/** @module fleet/hub-forward.test — the hub that does not lead never refuses a call while a lead can come: a poll without results gets no tasks, results and Harbor's calls wait for a lead. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { hubForwarder, type ForwardDeps } from './hub-forward.js';

const TOKEN = 't'.repeat(32);

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A hub that does not lead, behind a loopback server: `deps` names the lead (and what else a test needs). */
function follower(deps: Pick<ForwardDeps, 'lead'> & Partial<ForwardDeps>): Promise<{ server: Server; url: string }> {
  const forward = hubForwarder({
    token: TOKEN,
    logger: pino({ level: 'silent' }),
    now: () => Date.now(),
    self: 'http://127.0.0.1:9',
    leading: () => false,
    waitMs: 10_000,
    ...deps,
  });
  return listen((req, res) => {
    forward(req, res, new URL(req.url ?? '/', 'http://hub')).catch((err: unknown) => res.destroy(err as Error));
  });
}

test('while no lead answers, a poll without results gets no tasks (200) and one with results waits for the lead that comes', async () => {
  const seen: string[] = [];
  const leadHub = await listen((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"tasks":[{"taskId":"1/s-1","image":"a"}]}');
    });
  });
  let lead: string | undefined;
  const hub = await follower({ lead: () => lead });
  const poll = (results: unknown[]) =>
    fetch(`${hub.url}/api/v1/fleet/poll`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ report: { name: 's-1', intervalMs: 1_000 }, results, working: [] }),
    });
  try {
    const idle = await poll([]);
    assert.equal(idle.status, 200);
    assert.deepEqual(await idle.json(), { tasks: [], retryAfterMs: 1_000 });

    // A lead that is named but dead (refuses connections) is no different.
    lead = 'http://127.0.0.1:9';
    assert.equal((await poll([])).status, 200);

    const withResults = poll([{ taskId: '1/s-1', ok: true }]);
    setTimeout(() => (lead = leadHub.url), 300);
    const answered = await withResults;
    assert.equal(answered.status, 200);
    assert.deepEqual(((await answered.json()) as { tasks: unknown[] }).tasks.length, 1);
    assert.equal(seen.length, 1, 'only the poll with results reached the lead');
    assert.deepEqual((JSON.parse(seen[0]!) as { results: unknown[] }).results, [{ taskId: '1/s-1', ok: true }]);

    assert.equal((await fetch(`${hub.url}/api/v1/fleet/poll`, { method: 'POST', body: '{}' })).status, 401, 'the token is checked first');
  } finally {
    hub.server.close();
    leadHub.server.close();
  }
});

test('with an inbox, a poll with results is answered at once while no lead answers: its results are left for the next lead', async () => {
  const left: unknown[] = [];
  const hub = await follower({ lead: () => 'http://127.0.0.1:9', waitMs: 60_000, inbox: async (entry) => void left.push(entry) });
  try {
    const r = await fetch(`${hub.url}/api/v1/fleet/poll`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ report: { name: 's-1', intervalMs: 1_000 }, results: [{ taskId: '1/s-1', ok: true }], working: [] }),
    });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { tasks: [], retryAfterMs: 1_000 });
    assert.deepEqual(left, [{ site: 's-1', results: [{ taskId: '1/s-1', ok: true }] }]);
  } finally {
    hub.server.close();
  }
});

test("Harbor's and the admin API's calls wait for a lead while none is known; a read whose lead did not answer goes to the next; none after waitMs is 503", async () => {
  const leadHub = await listen((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(`{"method":"${req.method}"}`));
  });
  let lead: string | undefined;
  const hub = await follower({ lead: () => lead });
  const call = (method: string) =>
    fetch(`${hub.url}/api/v1/sites`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(method === 'GET' ? {} : { 'content-type': 'application/json' }) },
      ...(method === 'GET' ? {} : { body: '{}' }),
    });
  try {
    // No lead yet: the read is held, and answered by the lead that comes.
    const held = call('GET');
    setTimeout(() => (lead = leadHub.url), 300);
    const answered = await held;
    assert.equal(answered.status, 200);
    assert.deepEqual(await answered.json(), { method: 'GET' });

    // A named lead that refuses connections: the read waits for the next one.
    lead = 'http://127.0.0.1:9';
    const again = call('GET');
    setTimeout(() => (lead = leadHub.url), 300);
    assert.equal((await again).status, 200);

    // No lead within waitMs: 503 with Retry-After.
    const impatient = await follower({ lead: () => undefined, waitMs: 200 });
    const refused = await fetch(`${impatient.url}/api/v1/sites`, { headers: { authorization: `Bearer ${TOKEN}` } });
    impatient.server.close();
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '1');
  } finally {
    hub.server.close();
    leadHub.server.close();
  }
});
