/** @module fleet/hub.test — the hub's own surface against hostile callers: malformed selectors and password guessing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { SqliteHubState } from '../storage/hub-db.js';
import { createHub } from './hub.js';

async function hubServer(): Promise<{ server: Server; url: string }> {
  const hub = createHub({
    token: 't'.repeat(32),
    admin: { username: 'admin', password: 'right' },
    logger: pino({ level: 'silent' }),
    now: () => Date.now(),
    state: new SqliteHubState(mkdtempSync(join(tmpdir(), 'berth-hub-'))),
  });
  const server = createServer((req, res) => {
    hub
      .handle(req, res, new URL(req.url ?? '/', 'http://hub'))
      .then((handled) => {
        if (!handled) res.writeHead(404).end();
      })
      .catch((err: unknown) => res.destroy(err as Error));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });

test('a malformed site selector is 400, never 500', async () => {
  const { server, url } = await hubServer();
  try {
    for (const sel of ['%ff', '%', '%zz']) {
      const r = await fetch(`${url}/sites/${sel}/healthy`, { headers: { authorization: `Bearer ${'t'.repeat(32)}` } });
      assert.equal(r.status, 400, sel);
      assert.equal(((await r.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'INVALID_REQUEST');
    }
  } finally {
    server.close();
  }
});

test('guessing the admin password at the hub makes the address wait (429), the right one included', async () => {
  const { server, url } = await hubServer();
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
    server.close();
  }
});

test('wrong hub tokens are refused with 401 every time and never lock out the right token from the same address', async () => {
  const { server, url } = await hubServer();
  try {
    for (let i = 0; i < 8; i++) assert.equal((await fetch(`${url}/healthy`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(`${url}/healthy`, { headers: { authorization: `Bearer ${'t'.repeat(32)}` } })).status, 200);
  } finally {
    server.close();
  }
});
