/** @module fleet/hub.test — the hub's own surface against hostile callers: malformed selectors and password guessing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveHub } from './hub-testkit.js';

const hubServer = () => serveHub({ token: 't'.repeat(32), admin: { username: 'admin', password: 'right' } });

const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });

test('a malformed site selector is 400, never 500', async () => {
  const { url, close } = await hubServer();
  try {
    for (const sel of ['%ff', '%', '%zz']) {
      const r = await fetch(`${url}/sites/${sel}/healthy`, { headers: { authorization: `Bearer ${'t'.repeat(32)}` } });
      assert.equal(r.status, 400, sel);
      assert.equal(((await r.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'INVALID_REQUEST');
    }
  } finally {
    await close();
  }
});

test('guessing the admin password at the hub makes the address wait (429), the right one included', async () => {
  const { url, close } = await hubServer();
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await fetch(`${url}/api/v1/sites`, { headers: basic('admin', `wrong${i}`) })).status);
    assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
    assert.ok(
      statuses.slice(5).every((s) => s === 429),
      statuses.join(),
    );
    const right = await fetch(`${url}/api/v1/sites`, { headers: basic('admin', 'right') });
    assert.equal(right.status, 429);
    assert.ok(Number(right.headers.get('retry-after')) >= 1);
  } finally {
    await close();
  }
});

test('wrong hub tokens are refused with 401 every time and never lock out the right token from the same address', async () => {
  const { url, close } = await hubServer();
  try {
    for (let i = 0; i < 8; i++) assert.equal((await fetch(`${url}/healthy`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(`${url}/healthy`, { headers: { authorization: `Bearer ${'t'.repeat(32)}` } })).status, 200);
  } finally {
    await close();
  }
});

test('GET /api/v1/fleet/jobs/<id>: one job with its parts a page at a time; an unknown id is 404 in the error envelope', async () => {
  const { url, close } = await hubServer();
  const auth = { authorization: `Bearer ${'t'.repeat(32)}`, 'content-type': 'application/json' };
  try {
    const report = (name: string) => ({ report: { name, intervalMs: 60_000 }, results: [], working: [] });
    for (const name of ['s-3', 's-1', 's-2']) {
      assert.equal((await fetch(`${url}/api/v1/fleet/poll`, { method: 'POST', headers: auth, body: JSON.stringify(report(name)) })).status, 200);
    }
    const made = await fetch(`${url}/oapi/v1/jobs`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ type: 'preheat', args: { type: 'image', url: 'https://harbor.xing.com/v2/library/app/manifests/v1' } }),
    });
    const id = ((await made.json()) as { id: number }).id;
    const first = await fetch(`${url}/api/v1/fleet/jobs/${id}?limit=2`, { headers: basic('admin', 'right') });
    assert.equal(first.status, 200);
    const body = (await first.json()) as { id: number; state: string; siteCount: number; sites: Array<{ site: string }> };
    assert.deepEqual([body.id, body.state, body.siteCount], [id, 'PENDING', 3]);
    assert.deepEqual(
      body.sites.map((s) => s.site),
      ['s-1', 's-2'],
    );
    const next = /^<([^>]+)>; rel="next"$/.exec(first.headers.get('link') ?? '');
    assert.ok(next, `Link: ${first.headers.get('link')}`);
    const second = (await (await fetch(`${url}${next[1]}`, { headers: auth })).json()) as { sites: Array<{ site: string }> };
    assert.deepEqual(
      second.sites.map((s) => s.site),
      ['s-3'],
    );
    const missing = await fetch(`${url}/api/v1/fleet/jobs/999999`, { headers: auth });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'NOT_FOUND');
    assert.equal((await fetch(`${url}/api/v1/fleet/jobs/${id}`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  } finally {
    await close();
  }
});
