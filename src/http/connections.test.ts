/** @module http/connections.test — sockets berth answers and gives up on (408, 400, 405, 429, 503) free their slot at once and are gone after the grace; no silent socket outlives the header deadline. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { createServer, type ServerDeps } from './server.js';
import type { BerthConfig, ConnectionLimits } from '../config/types.js';
import type { TlsFiles } from './tls.js';
import { createCa, issueCertificate } from '../cli/certs.js';
import { waitFor } from '../../test/fixtures/proc.js';
import { fromAddress, holdHalfOpen } from '../../test/fixtures/hostile.js';

const SECOND = 1_000;
const servers: Server[] = [];
let dir: string;
let tlsFiles: TlsFiles;
let ca: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'berth-connections-'));
  const authority = createCa('test CA', 1);
  const leaf = issueCertificate(authority, { hosts: ['localhost'], ips: ['127.0.0.1'], usage: 'server', days: 1 });
  tlsFiles = { certificate: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };
  await writeFile(tlsFiles.certificate, leaf.cert);
  await writeFile(tlsFiles.key, leaf.key);
  ca = authority.cert;
});

after(async () => {
  for (const s of servers) s.close();
  await rm(dir, { recursive: true, force: true });
});

/** berth's real listener (only /healthz is needed) with these bounds; the idle timeout stays long, so it frees nothing here. */
async function serve(limits: Partial<ConnectionLimits>, files?: TlsFiles): Promise<{ server: Server; port: number; connections: () => Promise<number> }> {
  const config = {
    http: { headers: {}, limits: { headersTimeoutMs: 30 * SECOND, idleTimeoutMs: 300 * SECOND, maxConnections: 64, maxConnectionsPerClient: 64, ...limits } },
    log: { accesslog: false },
  } as unknown as BerthConfig;
  const server = createServer({ config, logger: pino({ level: 'silent' }) } as unknown as ServerDeps, files);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const connections = () => new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  return { server, port: (server.address() as AddressInfo).port, connections };
}

const healthz = async (port: number, localAddress: string) => (await fromAddress(`http://127.0.0.1:${port}/healthz`, { localAddress })).status;

test('a connection cut at the header timeout (408), malformed (400) or a CONNECT (405) frees its slot at once and is destroyed after the grace though the client never closes', async () => {
  const { port, connections } = await serve({ headersTimeoutMs: SECOND, maxConnectionsPerClient: 1 });
  const [silent] = await holdHalfOpen(port, 1, '127.0.0.2', { opening: '', keepOpen: true });
  await waitFor(() => silent!.received.startsWith('HTTP/1.1 408'), 10 * SECOND, { what: 'the 408' });
  // Its slot was given back with the answer, not when the socket goes: the address's one slot is free.
  assert.equal(await healthz(port, '127.0.0.2'), 200);
  await waitFor(async () => (await connections()) === 0, 5 * SECOND, { what: 'the cut socket to be destroyed' });
  silent!.socket.destroy();

  for (const [opening, answer] of [
    ['NOT HTTP\r\n\r\n', 'HTTP/1.1 400'],
    ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 'HTTP/1.1 405'],
  ] as const) {
    const [held] = await holdHalfOpen(port, 1, '127.0.0.3', { opening, keepOpen: true });
    await waitFor(() => held!.received.startsWith(answer), 5 * SECOND, { what: answer });
    await waitFor(async () => (await connections()) === 0, 5 * SECOND, { what: `the socket answered ${answer} to be destroyed` });
    assert.equal(await healthz(port, '127.0.0.3'), 200);
    held!.socket.destroy();
  }
});

test('connections refused by the per-client (429) and total (503) bounds are destroyed after the grace though the client never closes', async () => {
  const { port, connections } = await serve({ maxConnections: 3, maxConnectionsPerClient: 1 });
  const held = [
    ...(await holdHalfOpen(port, 1, '127.0.0.4', { opening: '', keepOpen: true })),
    ...(await holdHalfOpen(port, 1, '127.0.0.5', { opening: '', keepOpen: true })),
  ];
  await waitFor(async () => (await connections()) === 2, 5 * SECOND, { what: 'two held connections' });
  const refused = await holdHalfOpen(port, 1, '127.0.0.4', { opening: '', keepOpen: true });
  held.push(...(await holdHalfOpen(port, 1, '127.0.0.6', { opening: '', keepOpen: true })));
  await waitFor(async () => (await connections()) === 3, 5 * SECOND, { what: 'three held connections' });
  refused.push(...(await holdHalfOpen(port, 1, '127.0.0.9', { opening: '', keepOpen: true })));
  await waitFor(() => refused.every((h) => h.received.includes('\r\n\r\n{')), 5 * SECOND, { what: 'both refusals' });
  assert.match(refused[0]!.received, /^HTTP\/1\.1 429 /);
  assert.match(refused[1]!.received, /^HTTP\/1\.1 503 /);
  await waitFor(async () => (await connections()) === 3, 5 * SECOND, { what: 'the refused sockets to be destroyed' });
  [...held, ...refused].forEach((h) => h.socket.destroy());
});

test('a kept-alive connection waiting for its next request is closed after http.headerstimeout, not kept for minutes', async () => {
  const { port, connections } = await serve({ headersTimeoutMs: SECOND });
  const [client] = await holdHalfOpen(port, 1, '127.0.0.7', { opening: 'GET /healthz HTTP/1.1\r\nHost: berth\r\n\r\n', keepOpen: true });
  await waitFor(() => client!.received.startsWith('HTTP/1.1 200'), 5 * SECOND, { what: 'the first answer' });
  assert.match(client!.received, /keep-alive/i);
  await waitFor(async () => (await connections()) === 0, 6 * SECOND, { what: 'the idle kept-alive connection to be closed' });
  client!.socket.destroy();
});

test('under TLS, a connection that never completes its handshake, or never sends headers after it, is gone after http.headerstimeout and a few seconds', async () => {
  const { port, connections } = await serve({ headersTimeoutMs: SECOND, maxConnectionsPerClient: 1 }, tlsFiles);
  // Raw TCP and nothing else: there is no HTTP yet to time out, only the connection's deadline.
  const [raw] = await holdHalfOpen(port, 1, '127.0.0.8', { opening: '', keepOpen: true });
  await waitFor(async () => (await connections()) === 0, 8 * SECOND, { what: 'the connection without a handshake to be destroyed' });
  raw!.socket.destroy();

  // A completed handshake, then silence: 408, and the address's one slot is free at once.
  const tcp = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.8', allowHalfOpen: true });
  const silent = tls.connect({ socket: tcp, ca, servername: 'localhost' });
  let received = '';
  silent.on('data', (c: Buffer) => (received += c.toString('latin1')));
  silent.on('error', () => undefined);
  await waitFor(() => received.startsWith('HTTP/1.1 408'), 10 * SECOND, { what: 'the 408 over TLS' });
  const status = await new Promise<number>((resolve, reject) =>
    https
      .get({ port, host: '127.0.0.1', localAddress: '127.0.0.8', path: '/healthz', ca, servername: 'localhost', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject),
  );
  assert.equal(status, 200);
  await waitFor(async () => (await connections()) === 0, 5 * SECOND, { what: 'the TLS connection answered 408 to be destroyed' });
  silent.destroy();
});

test('headers over the bound: a GET gets the 431 envelope, a HEAD the same headers and no body, so an HTTP client reads either answer', async () => {
  const { port } = await serve({});
  const { request } = await import('undici');
  const headers = { 'x-long': 'a'.repeat(17_000) };
  const get = await request(`http://127.0.0.1:${port}/v2/`, { headers });
  assert.equal(get.statusCode, 431);
  assert.equal(((await get.body.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'UNSUPPORTED');
  const head = await request(`http://127.0.0.1:${port}/v2/`, { method: 'HEAD', headers });
  assert.equal(head.statusCode, 431);
  assert.equal(head.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(await head.body.text(), '');
});
