/** @module fleet/site-agent.test — the site agent waits what the hub asks: Retry-After on a 503 or 429, retryAfterMs on a stretched answer, within bounds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { WarmJobs } from '../cache/warm-up.js';
import type { SiteReport } from './hub-protocol.js';
import { MAX_BACKOFF_MS, REPORT_BATCH_MS, SiteAgent, backoffMs, parseRetryAfter } from './site-agent.js';

const INTERVAL_MS = 5_000;

test('Retry-After is read as seconds or an HTTP-date; anything else is ignored', () => {
  const now = Date.parse('2026-12-07T10:00:00Z');
  assert.equal(parseRetryAfter('20', now), 20_000);
  assert.equal(parseRetryAfter([' 3 '], now), 3_000);
  assert.equal(parseRetryAfter('Mon, 07 Dec 2026 10:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Mon, 07 Dec 2026 09:00:00 GMT', now), 0, 'a date in the past: at once');
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter('-5', now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
});

test('after a 503 or 429 a site waits as asked, never sooner than its interval, never later than four intervals or 5 minutes', () => {
  assert.equal(backoffMs(INTERVAL_MS, undefined), INTERVAL_MS);
  assert.equal(backoffMs(INTERVAL_MS, 1_000), INTERVAL_MS);
  assert.equal(backoffMs(INTERVAL_MS, 12_000), 12_000);
  assert.equal(backoffMs(INTERVAL_MS, 3_600_000), 4 * INTERVAL_MS);
  assert.equal(backoffMs(120_000, 3_600_000), MAX_BACKOFF_MS);
  assert.equal(backoffMs(600_000, 3_600_000), 600_000, 'an interval longer than the cap stays the least wait');
});

/** A hub answering each poll with the next of `answers`; the agent's clock and timer are fake, so every wait it chooses is seen. */
async function agentAgainst(answers: Array<{ status: number; headers?: Record<string, string>; body?: unknown }>, warm = {} as WarmJobs) {
  let polls = 0;
  const bodies: Array<{ results: Array<{ taskId: string }> }> = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(text) as { results: Array<{ taskId: string }> });
      const a = answers[Math.min(polls++, answers.length - 1)]!;
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(JSON.stringify(a.body ?? { errors: [{ code: 'UNAVAILABLE', message: 'busy' }] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const clock = Date.parse('2026-12-07T10:00:00Z');
  const waits: number[] = [];
  let next: (() => void) | undefined;
  let scheduled: () => void = () => undefined;
  const agent = new SiteAgent({
    site: { name: 'a', hub: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 't', intervalMs: INTERVAL_MS },
    warm,
    report: async () => ({ name: 'a', intervalMs: INTERVAL_MS }) as SiteReport,
    logger: pino({ level: 'silent' }),
    now: () => clock,
    schedule: (run, ms) => {
      waits.push(ms);
      next = run;
      scheduled();
      return { cancel: () => undefined };
    },
  });
  /** Lets the agent poll once more and returns the wait it chose after that poll. */
  const step = async (): Promise<number> => {
    const done = new Promise<void>((r) => (scheduled = r));
    if (next) next();
    else agent.start();
    await done;
    return waits[waits.length - 1]!;
  };
  return {
    step,
    bodies,
    waits,
    close: async () => {
      agent.stop();
      await new Promise((r) => server.close(r));
    },
  };
}

test('the site agent waits what a 503 or 429 asks (seconds or date, bounded) and what a stretched answer asks', async () => {
  const tasks = { tasks: [] };
  const a = await agentAgainst([
    { status: 503, headers: { 'retry-after': '12' } },
    { status: 429, headers: { 'retry-after': 'Mon, 07 Dec 2026 10:00:09 GMT' } },
    { status: 503, headers: { 'retry-after': '3600' } },
    { status: 503, headers: { 'retry-after': '1' } },
    { status: 200, headers: { 'retry-after': '8' }, body: { ...tasks, retryAfterMs: 7_500 } },
    { status: 200, headers: { 'retry-after': '8' }, body: tasks },
    { status: 500 },
    { status: 200, body: tasks },
  ]);
  try {
    assert.equal(await a.step(), 12_000, '503 Retry-After: 12');
    assert.equal(await a.step(), 9_000, '429 with an HTTP-date 9 s ahead');
    assert.equal(await a.step(), 4 * INTERVAL_MS, 'an hour asked: four intervals at most');
    assert.equal(await a.step(), INTERVAL_MS, 'a second asked: never sooner than the interval');
    assert.equal(await a.step(), 7_500, 'retryAfterMs of a stretched answer, more exact than the header');
    assert.equal(await a.step(), 8_000, 'the header alone');
    assert.equal(await a.step(), INTERVAL_MS, 'a 500: the interval');
    assert.equal(await a.step(), INTERVAL_MS, 'an answer asking nothing: the interval');
  } finally {
    await a.close();
  }
});

test('pre-heats finished close together are reported in one poll, a moment after the first finished', async () => {
  const warm = {
    run: async () => ({ state: 'done', images: [{ bytesFetched: 0, bytesTotal: 1, digest: 'sha256:' + 'd'.repeat(64) }] }),
  } as unknown as WarmJobs;
  const a = await agentAgainst(
    [
      {
        status: 200,
        body: {
          tasks: [
            { taskId: '1/a', image: 'app:v1' },
            { taskId: '2/a', image: 'app:v2' },
            { taskId: '3/a', image: 'app:v3' },
          ],
        },
      },
      { status: 200, body: { tasks: [] } },
    ],
    warm,
  );
  try {
    await a.step();
    // The poll's own next one and the report are scheduled in whichever order the pre-heats finish.
    while (a.waits.length < 2) await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      [...a.waits].sort((x, y) => x - y),
      [REPORT_BATCH_MS, INTERVAL_MS],
      'one report scheduled for the three',
    );
    assert.equal(await a.step(), INTERVAL_MS);
    assert.deepEqual(
      a.bodies.map((b) => b.results.map((r) => r.taskId)),
      [[], ['1/a', '2/a', '3/a']],
    );
  } finally {
    await a.close();
  }
});
