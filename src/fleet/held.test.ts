/** @module fleet/held.test — the held-blobs exchange: the list is asked for only when the hub's hash differs, read back whole, and bounded. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { serveHub } from './hub-testkit.js';
import { MAX_HELD, heldDigests, heldList } from './held.js';

const TOKEN = 'h'.repeat(32);
const d = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

test('heldList: sha256 only, each once, sorted, bounded; its hash changes with the set, not the order', () => {
  const a = heldList([d(3), d(1), 'sha512:' + 'a'.repeat(128), d(1), 'junk', d(2)]);
  assert.equal(a.count, 3);
  assert.equal(a.body, `${d(1)}\n${d(2)}\n${d(3)}\n`);
  assert.equal(heldList([d(2), d(3), d(1)]).hash, a.hash);
  assert.notEqual(heldList([d(1), d(2)]).hash, a.hash);
  assert.equal(heldList(Array.from({ length: MAX_HELD + 5 }, (_, i) => d(i))).count, MAX_HELD);
});

test('the hub answers its hash with each poll; a list PUT is kept and its hash answered from then on', async () => {
  const { url, state, close } = await serveHub({ token: TOKEN });
  const auth = { authorization: `Bearer ${TOKEN}` };
  const list = heldList([d(1), d(2)]);
  const poll = async () => {
    const report = { name: 'rig-1', version: 'x', intervalMs: 500, held: { hash: list.hash, count: list.count } };
    const r = await fetch(`${url}/api/v1/fleet/poll`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ report, results: [], working: [] }),
    });
    return ((await r.json()) as { heldHash?: string | null }).heldHash;
  };
  const put = (body: string, site = 'rig-1') =>
    fetch(`${url}/api/v1/fleet/held/${site}`, { method: 'PUT', headers: { ...auth, 'content-type': 'text/plain' }, body });
  try {
    assert.equal(await poll(), null, 'nothing kept yet: the site is asked for its list');
    const stored = await put(list.body);
    assert.equal(stored.status, 200);
    assert.deepEqual(await stored.json(), { hash: list.hash, count: 2 });
    assert.equal(await poll(), list.hash, 'the same hash: the site sends nothing more');
    assert.deepEqual([...heldDigests((await state.held('rig-1'))!)], [d(1), d(2)]);
    assert.equal((await put(list.body, 'never-polled')).status, 404);
    assert.equal((await put('sha256:xyz\n')).status, 400);
    assert.equal((await put(`${d(1)}\n`.repeat(MAX_HELD + 1))).status, 413);
    assert.equal((await state.held('rig-1'))?.hash, list.hash, 'a refused list leaves the kept one');
  } finally {
    await close();
  }
});

test('a hub builds at most MAX_BUNDLES_AT_ONCE site bundles at once: one more is answered 503 with Retry-After, and a finished one frees its slot', async () => {
  const { MAX_BUNDLES_AT_ONCE, sendSiteBundle } = await import('./hub-bundle.js');
  let release!: () => void;
  const blocked = new Promise<void>((r) => (release = r));
  const deps = {
    known: () => true,
    // The held set arrives when the test says: until then each bundle holds its slot.
    state: { heldHash: async () => undefined, putHeld: async () => undefined, held: async () => blocked.then(() => undefined) },
    source: { name: 'a test source' } as never,
    logger: pino({ level: 'silent' }),
    now: () => 0,
    building: { count: 0 },
  };
  const url = new URL('http://hub/api/v1/sites/site-1/bundle?images=harbor.xing.com/xing/app:v1');
  const send = () => sendSiteBundle(deps, {} as never, {} as never, 'site-1', url);
  const running = Array.from({ length: MAX_BUNDLES_AT_ONCE }, send);
  assert.equal(deps.building.count, MAX_BUNDLES_AT_ONCE);
  await assert.rejects(send(), (err: { status?: number; code?: string; headers?: Record<string, string> }) => {
    assert.equal(err.status, 503);
    assert.equal(err.code, 'UNAVAILABLE');
    assert.equal(err.headers?.['Retry-After'], '60');
    return true;
  });
  release();
  // No list from the site yet: each is refused (409), and gives its slot back.
  for (const r of running) await assert.rejects(r, (err: { status?: number }) => err.status === 409);
  assert.equal(deps.building.count, 0);
});
