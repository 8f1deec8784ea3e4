/** @module fleet/admission.test — admission control: a loaded hub stretches its sites' intervals, the site agent obeys, and liveness counts the stretch. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino from 'pino';
import { SqliteHubState } from '../storage/hub-db.js';
import { Admission, MAX_STRETCH } from './admission.js';
import { createHub } from './hub.js';
import { nextPollMs } from './site-agent.js';
import { SiteBook } from './sites.js';
import type { SiteReport } from './hub-protocol.js';

test('sites are slowed only past a bound, in proportion to the load, never past the stretch that keeps them up', () => {
  let delay = 0;
  const a = new Admission({ maxInFlight: 4, maxLoopDelayMs: 100 }, () => delay);
  assert.equal(a.retryAfterMs(1_000), 0, 'idle');
  for (let i = 0; i < 4; i++) a.enter();
  assert.equal(a.retryAfterMs(1_000), 0, 'at the bound');
  for (let i = 0; i < 2; i++) a.enter();
  assert.equal(a.retryAfterMs(1_000), 1_500, 'half again as many polls as the bound');
  for (let i = 0; i < 6; i++) a.done();
  delay = 1_000;
  assert.equal(a.retryAfterMs(1_000), 1_000 * MAX_STRETCH, 'a stalled loop stretches to the most');
  assert.ok(MAX_STRETCH < 3, 'under the three intervals that make a site stale');
});

test('the site agent waits what the hub asked, never less than its interval nor more than the stretch', () => {
  assert.equal(nextPollMs(5_000, undefined), 5_000);
  assert.equal(nextPollMs(5_000, 1_000), 5_000);
  assert.equal(nextPollMs(5_000, 8_000), 8_000);
  assert.equal(nextPollMs(5_000, 1e9), 5_000 * MAX_STRETCH);
  assert.equal(nextPollMs(5_000, Number.NaN), 5_000);
});

test('a site told to wait longer is not stale while it waits; silent past three stretched intervals it is', () => {
  let t = 1_000_000;
  const book = new SiteBook(() => t);
  book.arrive({ name: 'a', intervalMs: 1_000 } as SiteReport, t);
  book.answered('a', 2_000);
  t += 5_000;
  assert.equal(book.stateOf('a')?.state, 'up', 'three of its own intervals passed, not three of the stretched ones');
  t += 1_500;
  assert.equal(book.stateOf('a')?.state, 'stale');
});

/** One poll through the hub's handler, without a socket. */
async function pollThrough(
  hub: ReturnType<typeof createHub>,
  name: string,
): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, string> }> {
  const req = new PassThrough() as unknown as IncomingMessage & PassThrough;
  Object.assign(req, {
    method: 'POST',
    headers: { authorization: `Bearer ${'t'.repeat(32)}`, 'content-type': 'application/json' },
    socket: { remoteAddress: '127.0.0.1' },
  });
  req.end(JSON.stringify({ report: { name, intervalMs: 1_000 }, results: [], working: [] }));
  let text = '';
  const headers: Record<string, string> = {};
  const res = {
    headersSent: false,
    statusCode: 0,
    setHeader: (k: string, v: unknown) => void (headers[k.toLowerCase()] = String(v)),
    end: (b?: string) => {
      text = b ?? '';
    },
  };
  await hub.handle(req, res as unknown as ServerResponse, new URL('http://hub/api/v1/fleet/poll'));
  return { status: res.statusCode, body: JSON.parse(text || '{}') as Record<string, unknown>, headers };
}

test('a loaded hub answers polls with retryAfterMs and Retry-After; an idle one without', async () => {
  let delay = 0;
  const hub = createHub({
    token: 't'.repeat(32),
    logger: pino({ level: 'silent' }),
    now: () => Date.now(),
    state: new SqliteHubState(mkdtempSync(join(tmpdir(), 'berth-hub-admission-'))),
    admission: { maxInFlight: 100, maxLoopDelayMs: 50 },
    loopDelayMs: () => delay,
  });
  try {
    const idle = await pollThrough(hub, 'a');
    assert.equal(idle.status, 200, JSON.stringify(idle.body));
    assert.equal(idle.body['retryAfterMs'], undefined);
    assert.equal(idle.headers['retry-after'], undefined);
    delay = 500;
    const loaded = await pollThrough(hub, 'a');
    assert.equal(loaded.body['retryAfterMs'], 1_000 * MAX_STRETCH);
    assert.equal(loaded.headers['retry-after'], String(MAX_STRETCH), 'whole seconds');
  } finally {
    await hub.close();
  }
});
