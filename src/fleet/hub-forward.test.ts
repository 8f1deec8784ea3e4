/** @module fleet/hub-forward.test — the hub that does not lead never refuses a site's poll while no lead answers: no results, no tasks; results wait for a lead. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { hubForwarder } from './hub-forward.js';

const TOKEN = 't'.repeat(32);

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
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
  const forward = hubForwarder({
    token: TOKEN,
    logger: pino({ level: 'silent' }),
    now: () => Date.now(),
    lead: () => lead,
    self: 'http://127.0.0.1:9',
    leading: () => false,
    waitMs: 10_000,
  });
  const follower = await listen((req, res) => {
    forward(req, res, new URL(req.url ?? '/', 'http://hub')).catch((err: unknown) => res.destroy(err as Error));
  });
  const poll = (results: unknown[]) =>
    fetch(`${follower.url}/api/v1/fleet/poll`, {
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

    assert.equal((await fetch(`${follower.url}/api/v1/fleet/poll`, { method: 'POST', body: '{}' })).status, 401, 'the token is checked first');
  } finally {
    follower.server.close();
    leadHub.server.close();
  }
});

test('with an inbox, a poll with results is answered at once while no lead answers: its results are left for the next lead', async () => {
  const left: unknown[] = [];
  const forward = hubForwarder({
    token: TOKEN,
    logger: pino({ level: 'silent' }),
    now: () => Date.now(),
    lead: () => 'http://127.0.0.1:9',
    self: 'http://127.0.0.1:9',
    leading: () => false,
    waitMs: 60_000,
    inbox: async (entry) => void left.push(entry),
  });
  const follower = await listen((req, res) => {
    forward(req, res, new URL(req.url ?? '/', 'http://hub')).catch((err: unknown) => res.destroy(err as Error));
  });
  try {
    const r = await fetch(`${follower.url}/api/v1/fleet/poll`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ report: { name: 's-1', intervalMs: 1_000 }, results: [{ taskId: '1/s-1', ok: true }], working: [] }),
    });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { tasks: [], retryAfterMs: 1_000 });
    assert.deepEqual(left, [{ site: 's-1', results: [{ taskId: '1/s-1', ok: true }] }]);
  } finally {
    follower.server.close();
  }
});
