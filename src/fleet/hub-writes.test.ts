/** @module fleet/hub-writes.test — what a poll costs the hub's store: an unchanged report is not written again, only when it was seen; large writes go in slices. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { SqliteHubState } from '../storage/hub-db.js';
import type { HubWrite, StoredJob } from '../ports/hub-state.js';
import { createHub, slices } from './hub.js';

const TOKEN = 't'.repeat(32);

test('a poll with an unchanged report and no results writes nothing but, batched, when it was seen; a changed report is written whole', async () => {
  const root = mkdtempSync(join(tmpdir(), 'berth-hub-writes-'));
  const state = new SqliteHubState(root);
  const writes: HubWrite[] = [];
  const recording = Object.assign(Object.create(state) as SqliteHubState, {
    write: async (w: HubWrite) => {
      writes.push(w);
      await state.write(w);
    },
  });
  let clock = 1_000_000;
  const timed: number[] = [];
  const hub = createHub({ token: TOKEN, logger: pino({ level: 'silent' }), now: () => clock, state: recording, observePoll: (s) => timed.push(s) });
  const server = createServer((req, res) => {
    hub.handle(req, res, new URL(req.url ?? '/', 'http://hub')).catch((err: unknown) => res.destroy(err as Error));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/fleet/poll`;
  const poll = async (images: number) => {
    const body = JSON.stringify({ report: { name: 's-1', intervalMs: 60_000, images }, results: [], working: [] });
    const r = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body });
    assert.equal(r.status, 200);
    await r.text();
  };
  const sitesWritten = () => writes.flatMap((w) => (w.sites ?? []).map((s) => [s.name, s.at]));
  const until = async (n: number) => {
    for (let i = 0; i < 500 && sitesWritten().length < n; i++) await new Promise((r) => setTimeout(r, 10));
  };
  try {
    await poll(1);
    await until(1);
    assert.deepEqual(sitesWritten(), [['s-1', 1_000_000]], 'a new site is written');
    clock += 5_000;
    await poll(1);
    clock += 5_000;
    await poll(1);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(sitesWritten(), [['s-1', 1_000_000]], 'unchanged reports are not written again');
    clock += 5_000;
    await poll(2);
    await until(2);
    assert.deepEqual(sitesWritten(), [
      ['s-1', 1_000_000],
      ['s-1', 1_015_000],
    ]);
    clock += 5_000;
    await poll(2);
  } finally {
    server.close();
    await hub.close();
  }
  assert.deepEqual(
    writes.flatMap((w) => w.seen ?? []),
    [{ name: 's-1', at: 1_020_000 }],
    'the last time it was seen, written on close (or by the sweep each second)',
  );
  const reopened = new SqliteHubState(root);
  assert.deepEqual(
    (await reopened.load()).sites.map((s) => [s.name, s.at, s.report['images']]),
    [['s-1', 1_020_000, 2]],
  );
  await reopened.close();
  assert.equal(timed.length, 5, 'each poll timed once');
  assert.ok(timed.every((s) => s >= 0 && s < 10));
});

test('a large write goes in slices of about 2,000 rows: each job with its fan-out, then the rest', () => {
  const job = (id: number): StoredJob => ({
    id,
    image: 'a',
    digest: null,
    source: 'harbor',
    selector: '',
    url: 'a',
    createdAt: 1,
    finishedAt: null,
    error: null,
  });
  const sites = (n: number) => Array.from({ length: n }, (_, i) => `s-${i}`);
  const part = { site: 's-1', state: 'success' as const, error: null, digest: null, bytesFetched: 0, bytesTotal: 0, finishedAt: 2 };
  const out = slices({
    jobs: [job(1), job(2), job(3), job(4)],
    pendingParts: [1, 2, 3].map((id) => ({ job: id, sites: sites(900) })),
    parts: [{ job: 1, part }],
    sites: [],
    seen: [{ name: 's-1', at: 5 }],
  });
  assert.deepEqual(
    out.map((w) => [(w.jobs ?? []).map((j) => j.id), (w.pendingParts ?? []).map((p) => p.job), (w.parts ?? []).length, (w.seen ?? []).length]),
    [
      [[1, 2], [1, 2], 0, 0],
      [[3], [3], 0, 0],
      [[4], [], 1, 1],
    ],
  );
  assert.deepEqual(slices({ sites: [], seen: [] }), [], 'nothing to write, no write');
});
