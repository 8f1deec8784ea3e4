/** @module e2e/hostile-limits.test — connection bounds against slowloris clients, long slow downloads, and the admin API beside client auth. */
/** @serial holds slow clients against connection bounds and timeouts. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { BERTH_BIN, startBerth, type Berth } from '../fixtures/berth.js';
import { freePort, makeTempDir, removeDir, run, spawnService, startedOrThrow, waitFor } from '../fixtures/proc.js';
import { call, makeManifest, pushManifest } from '../fixtures/oci-http.js';
import { fromAddress, holdHalfOpen, rawBody, type HeldSocket } from '../fixtures/hostile.js';
import { startNetns } from '../fixtures/netns.js';

let berth: Berth;

/** Run inside the namespace: one request, printed as {status, body}; status 0 when nothing answers. */
const INNER_CLIENT = `
const http = require('node:http');
const [url, method] = process.argv.slice(1);
const req = http.request(url, { method }, (res) => {
  let body = '';
  res.on('data', (c) => { body += c; });
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body })));
});
req.on('error', () => console.log(JSON.stringify({ status: 0, body: '' })));
req.end();
`;

before(async () => {
  berth = await startBerth({
    // One process: connection bounds hold per serving worker (docs/large-sites.md: Every core), and this test counts exact refusals.
    config: { version: 0.1, http: { headerstimeout: '1s', idletimeout: '3s', maxconnections: 50, maxconnectionsperclient: 20, workers: 1 } },
  });
});

after(async () => {
  await berth?.stop();
});

const closeAll = (held: HeldSocket[]) => held.forEach((h) => h.socket.destroy());

test('slowloris: half-sent headers are cut at http.headerstimeout, and per-client and total bounds refuse the excess with envelopes', async () => {
  const held = await holdHalfOpen(berth.port, 30, '127.0.0.2');
  try {
    await waitFor(() => held.filter((h) => h.closed).length >= 10, 5_000, { what: 'the excess connections to be refused' });
    const refused = held.filter((h) => h.received.startsWith('HTTP/1.1 429'));
    assert.equal(refused.length, 10, 'beyond 20 connections from one address');
    assert.equal((rawBody(refused[0]!.received)['errors'] as Array<{ code: string }>)[0]?.code, 'TOOMANYREQUESTS');
    // Another client is served while that address holds its 20.
    assert.equal((await fromAddress(`${berth.url}/v2/`, { localAddress: '127.0.0.1' })).status, 200);
    // The held ones are cut once their headers are overdue, each with a 408 envelope.
    await waitFor(() => held.every((h) => h.closed), 15_000, { what: 'half-open connections to be closed' });
    assert.equal(held.filter((h) => h.received.startsWith('HTTP/1.1 408')).length, 20);
  } finally {
    closeAll(held);
  }
  const total = [
    ...(await holdHalfOpen(berth.port, 20, '127.0.0.3')),
    ...(await holdHalfOpen(berth.port, 20, '127.0.0.4')),
    ...(await holdHalfOpen(berth.port, 20, '127.0.0.5')),
  ];
  try {
    await waitFor(() => total.filter((h) => h.received.startsWith('HTTP/1.1 503')).length >= 10, 5_000, { what: 'the total bound to bite' });
    assert.equal((rawBody(total.find((h) => h.received.startsWith('HTTP/1.1 503'))!.received)['errors'] as Array<{ code: string }>)[0]?.code, 'UNAVAILABLE');
    await waitFor(() => total.every((h) => h.closed), 15_000, { what: 'held connections to be closed' });
    assert.equal((await call(berth.url, 'GET', '/v2/')).status, 200, 'all served again once the holders are cut');
  } finally {
    closeAll(total);
  }
  const limitLines = (await berth.logLines()).filter((l) => l['msg'] === 'connection limit reached: refusing new connections');
  assert.ok(limitLines.length >= 1 && limitLines.length <= 3, `logged once per interval, not per socket (${limitLines.length} lines for 20 refusals)`);
  const overdue = (await berth.logLines()).filter((l) => String(l['msg']).startsWith('cut connections whose request headers did not arrive'));
  assert.ok(overdue.length >= 1 && overdue.length <= 3, `header timeouts too (${overdue.length} lines for 60 cut connections)`);
});

test('a slow but progressing download lasting twice http.idletimeout completes', async () => {
  const data = randomBytes(24 * 1024 * 1024);
  const m = makeManifest(randomBytes(100), [data]);
  assert.equal((await pushManifest(berth.url, 'slow/app', m, 'v1')).status, 201);
  // About 1 MiB every 250 ms: some 6 s for a transfer whose connection may be silent for 3 s at most.
  const got = await new Promise<{ status: number; digest: string; bytes: number }>((resolve, reject) => {
    http
      .get(`${berth.url}/v2/slow/app/blobs/${m.layers[0]!.digest}`, { agent: false }, (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        let mark = 0;
        res.on('data', (c: Buffer) => {
          hash.update(c);
          bytes += c.length;
          if (bytes - mark >= 1024 * 1024) {
            mark = bytes;
            res.pause();
            setTimeout(() => res.resume(), 250);
          }
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, digest: `sha256:${hash.digest('hex')}`, bytes }));
        res.on('error', reject);
        res.on('aborted', () => reject(new Error(`cut after ${bytes} bytes`)));
      })
      .on('error', reject);
  });
  assert.equal(got.status, 200);
  assert.equal(got.bytes, data.length);
  assert.equal(got.digest, m.layers[0]!.digest);
});

test('an idle connection is closed after http.idletimeout', async () => {
  const held = await holdHalfOpen(berth.port, 1, '127.0.0.6');
  // Completes the request, then stays silent on the kept-alive connection.
  held[0]!.socket.write('x\r\n\r\n');
  await waitFor(() => held[0]!.closed, 10_000, { what: 'the idle connection to be closed' });
  assert.match(held[0]!.received, /^HTTP\/1\.1 200/);
});

test('with auth: configured and admin.trustloopback: true, the admin API answers only loopback clients', async (t) => {
  let ns;
  try {
    ns = await startNetns(`10.214.${process.pid % 250}.1`);
  } catch (err) {
    t.skip(`cannot make a network namespace here: ${(err as Error).message}`);
    return;
  }
  const dir = await makeTempDir('berth-admin-ns-');
  const port = await freePort();
  const htpasswd = path.join(dir, 'htpasswd');
  await writeFile(htpasswd, `${(await run('htpasswd', ['-nbB', '-C', '5', 'carol', 'carol-pw'])).stdout.trim()}\n`);
  const config = path.join(dir, 'config.yml');
  await writeFile(
    config,
    stringify({
      version: 0.1,
      http: { addr: `0.0.0.0:${port}` },
      storage: { filesystem: { rootdirectory: path.join(dir, 'data') } },
      auth: { htpasswd: { realm: 'edge', path: htpasswd } },
      admin: { trustloopback: true },
    }),
  );
  const svc = spawnService({
    cmd: ns.wrap[0]!,
    args: [...ns.wrap.slice(1), process.execPath, BERTH_BIN, 'serve', '--config', config],
    logFile: path.join(dir, 'berth.log'),
  });
  // A client inside the namespace: from the namespace's own address it is not loopback.
  const inNs = async (url: string, method = 'GET'): Promise<{ status: number; body: string }> => {
    const out = (await run(ns.wrap[0]!, [...ns.wrap.slice(1), process.execPath, '-e', INNER_CLIENT, url, method])).stdout;
    return JSON.parse(out) as { status: number; body: string };
  };
  try {
    await startedOrThrow(
      svc,
      () => waitFor(async () => (await inNs(`http://127.0.0.1:${port}/healthz`)).status === 200, 20_000, { what: 'berth in the namespace', abort: svc.exited }),
      'berth',
    );
    const outside = `http://${ns.address}:${port}`;
    const images = await inNs(`${outside}/api/v1/images`);
    assert.equal(images.status, 403, images.body);
    assert.match(images.body, /loopback/);
    const evict = await inNs(`${outside}/api/v1/evict`, 'POST');
    assert.equal(evict.status, 403, evict.body);
    assert.equal((await inNs(`${outside}/v2/_catalog`)).status, 401, 'the registry API still asks for a login');
    assert.equal((await inNs(`http://127.0.0.1:${port}/api/v1/images`)).status, 200, 'a loopback client (the host itself) may');
  } finally {
    await svc.stop(10_000);
    await ns.stop();
    await removeDir(dir);
  }
});
