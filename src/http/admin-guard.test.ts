/** @module http/admin-guard.test — who may use the admin API: loopback trust, cross-site checks, login backoff, long passwords, path encoding. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http, { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { ImageCatalog } from '../cache/images.js';
import type { WarmJobs } from '../cache/warm-up.js';
import { createAdminHandler } from './admin.js';
import { AdminGate, trustedLoopback, type AdminAccess } from './admin-guard.js';
import { ApiError } from './admin-io.js';
import { OciError } from '../oci/errors.js';
import type { BerthConfig } from '../config/types.js';
import { adminAccess } from '../assembly/operations.js';

let server: Server;
let port: number;
const pinned: string[] = [];

before(async () => {
  const catalog = {
    list: async () => [],
    pin: (image: string) => {
      pinned.push(image);
      return { digest: 'sha256:x', digests: 1 };
    },
  } as unknown as ImageCatalog;
  const handler = createAdminHandler({
    // Neither auth: nor admin: as configured by default: reads open, state changes for trusted loopback callers.
    access: { openReads: true, trustLoopback: true, now: () => Date.now() },
    telemetry: { metrics: async () => ({ contentType: 'text/plain', body: '' }), stats: () => ({}), history: { toJSON: () => ({}) } },
    readiness: async () => ({ ready: true, store: { writable: true, metadata: true }, upstreams: [] }),
    upstreams: [],
    catalog,
    warm: { get: () => undefined } as unknown as WarmJobs,
    logger: pino({ level: 'silent' }),
  });
  server = createServer((req, res) => {
    handler(req, res, new URL(req.url ?? '/', 'http://x')).catch((err: unknown) => res.destroy(err as Error));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

after(() => new Promise<void>((r) => server.close(() => r())));

/** A raw request, so Host and every other header are exactly as given. */
function send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; code: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        const parsed = text ? (JSON.parse(text) as { errors?: Array<{ code: string }> }) : {};
        resolve({ status: res.statusCode ?? 0, code: parsed.errors?.[0]?.code });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const json = { 'content-type': 'application/json' };
const pin = '{"image":"xing/app:v1"}';

test('state-changing calls need JSON and a same-origin or absent Origin; refused ones change nothing', async () => {
  const refused = [
    [{ 'content-type': 'text/plain', origin: 'http://evil.example' }, 403, 'FORBIDDEN'],
    [{ 'content-type': 'text/plain' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    [{ 'content-type': 'application/x-www-form-urlencoded' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    [{}, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    [{ ...json, origin: 'http://evil.example' }, 403, 'FORBIDDEN'],
    [{ ...json, origin: 'null' }, 403, 'FORBIDDEN'],
    [{ ...json, origin: `http://127.0.0.1:${port + 1}` }, 403, 'FORBIDDEN'],
    [{ ...json, 'sec-fetch-site': 'cross-site' }, 403, 'FORBIDDEN'],
  ] as const;
  for (const [headers, status, code] of refused) {
    const r = await send('POST', '/api/v1/pin', headers, pin);
    assert.deepEqual([r.status, r.code], [status, code], JSON.stringify(headers));
  }
  assert.deepEqual(pinned, [], 'no refused call pinned anything');
  const accepted = [
    json,
    { 'content-type': 'Application/JSON; charset=utf-8' },
    { ...json, origin: `http://127.0.0.1:${port}` },
    { ...json, 'sec-fetch-site': 'same-origin' },
  ];
  for (const headers of accepted) assert.equal((await send('POST', '/api/v1/pin', headers, pin)).status, 200, JSON.stringify(headers));
  assert.equal(pinned.length, accepted.length);
});

test('without auth: and admin:, anyone reads, and only a trusted loopback caller changes state', async () => {
  assert.equal((await send('GET', '/api/v1/stats', { host: 'evil.example' })).status, 200);
  const proxied: Record<string, string>[] = [
    { host: 'evil.example' },
    { 'x-forwarded-for': '10.1.2.3' },
    { forwarded: 'for=10.1.2.3' },
    { 'x-real-ip': '10.1.2.3' },
  ];
  for (const headers of proxied) {
    const r = await send('POST', '/api/v1/pin', { ...json, ...headers }, pin);
    assert.deepEqual([r.status, r.code], [403, 'FORBIDDEN'], JSON.stringify(headers));
  }
  assert.equal((await send('POST', '/api/v1/pin', { ...json, host: `localhost:${port}` }, pin)).status, 200);
});

test('malformed percent-encoding anywhere under /api/ is 400, never 500', async () => {
  for (const path of ['/api/v1/warm/%ff', '/api/v1/warm/%', '/api/v1/warm/%zz', '/api/v1/%ff', '/api/%e0%80']) {
    const r = await send('GET', path, {});
    assert.deepEqual([r.status, r.code], [400, 'INVALID_REQUEST'], path);
  }
  assert.equal((await send('GET', '/api/v1/warm/%41', {})).status, 404, 'valid encoding still reaches the route');
});

/** A request as the gate sees it. */
function fake(headers: Record<string, string>, address = '127.0.0.1', method = 'GET'): IncomingMessage {
  return { method, headers, socket: { remoteAddress: address } } as unknown as IncomingMessage;
}

test('loopback trust: loopback peer, loopback Host, no forwarding header', () => {
  for (const host of ['localhost', 'localhost:5000', '127.0.0.1:5000', '[::1]:5000', 'LOCALHOST']) assert.ok(trustedLoopback(fake({ host })), host);
  assert.ok(trustedLoopback(fake({ host: 'localhost' }, '::1')));
  assert.ok(trustedLoopback(fake({ host: 'localhost' }, '::ffff:127.0.0.1')));
  for (const host of ['evil.example', 'evil.example:5000', '127.0.0.1.evil.example', 'localhost.evil.example', '10.0.0.5:5000', ''])
    assert.equal(trustedLoopback(fake({ host })), false, host);
  assert.equal(trustedLoopback(fake({})), false, 'no Host');
  assert.equal(trustedLoopback(fake({ host: 'localhost' }, '10.0.0.7')), false, 'remote peer');
  for (const h of ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-real-ip', 'via'])
    assert.equal(trustedLoopback(fake({ host: 'localhost', [h]: 'x' })), false, h);
});

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
function refusal(fn: () => void): { status: number; code: string; headers: Record<string, string> } {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    if (err instanceof OciError) return { status: err.status, code: err.code, headers: { ...err.headers } };
    throw err;
  }
  return { status: 200, code: 'OK', headers: {} };
}

test('admin.trustloopback: off makes loopback callers authenticate; on lets them in without credentials', () => {
  const credentials = { username: 'ops', password: 'pw' };
  const now = () => 0;
  const local = fake({ host: 'localhost:5000' });
  assert.equal(refusal(() => new AdminGate({ credentials, trustLoopback: false, now }).admit(local)).status, 401);
  assert.equal(refusal(() => new AdminGate({ credentials, trustLoopback: true, now }).admit(local)).status, 200);
  assert.equal(refusal(() => new AdminGate({ credentials, trustLoopback: true, now }).admit(fake({ host: 'evil.example' }))).status, 401);
  // With auth: and no admin: the API has no credentials: without trust nobody, with it loopback only.
  assert.equal(refusal(() => new AdminGate({ trustLoopback: false, now }).admit(local)).code, 'FORBIDDEN');
  assert.equal(refusal(() => new AdminGate({ trustLoopback: true, now }).admit(local)).status, 200);
  assert.equal(refusal(() => new AdminGate({ trustLoopback: true, now }).admit(fake({ host: 'localhost', 'x-forwarded-for': '10.0.0.1' }))).code, 'FORBIDDEN');
  assert.equal(refusal(() => new AdminGate({ open: true, now }).admit(fake({ host: 'evil.example' }, '10.0.0.7', 'POST'))).status, 200);
});

test('failed admin logins back off per client: 429 with Retry-After, even for the right password, until the wait is over', () => {
  let t = 1_000_000;
  const access: AdminAccess = { credentials: { username: 'ops', password: 'pw' }, now: () => t };
  const gate = new AdminGate(access);
  const from = (address: string, pass: string) => refusal(() => gate.admit(fake({ host: 'x', authorization: basic('ops', pass) }, address)));
  for (let i = 0; i < 5; i++) assert.equal(from('10.0.0.9', `guess${i}`).status, 401);
  const blocked = from('10.0.0.9', 'guess5');
  assert.equal(blocked.status, 429);
  assert.equal(blocked.headers['Retry-After'], '1');
  assert.equal(from('10.0.0.9', 'pw').status, 429, 'no check while waiting');
  assert.equal(from('10.0.0.10', 'pw').status, 200, 'another client is not held up');
  t += 1_000;
  assert.equal(from('10.0.0.9', 'pw').status, 200);
});

test('loopback trust by default only without auth: (or passthroughauth) and without admin credentials; admin.trustloopback overrides', () => {
  const access = (c: Record<string, unknown>) => adminAccess({ upstreams: [], ...c } as unknown as BerthConfig, () => 0);
  assert.deepEqual([access({}).openReads, access({}).trustLoopback], [true, true]);
  assert.deepEqual([access({ auth: {} }).openReads, access({ auth: {} }).trustLoopback], [false, false]);
  assert.equal(access({ upstreams: [{ passthrough: { ttlMs: 1 } }] }).trustLoopback, false);
  assert.equal(access({ admin: { username: 'ops', password: 'pw' } }).trustLoopback, false);
  assert.equal(access({ auth: {}, adminTrustLoopback: true }).trustLoopback, true);
  assert.equal(access({ adminTrustLoopback: false }).trustLoopback, false);
  assert.equal(access({ adminOpen: true }).open, true);
});
