/** @module cli/doctor.test — doctor names a loop first, with berth stopped and behind a certificate of berth's own CA, with one fix shared with the client's message. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpsServer } from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { stringify } from 'yaml';
import { loadConfig } from '../config/load.js';
import { runDoctor } from './doctor.js';
import { createCa, issueCertificate } from './certs.js';
import { loopMessage } from '../upstream/loop.js';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-doctor-'));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function doctor(dir: string, doc: Record<string, unknown>): Promise<{ status: number; lines: string[] }> {
  const file = join(dir, 'config.yml');
  await writeFile(file, stringify({ version: 0.1, storage: { filesystem: { rootdirectory: join(dir, 'data') } }, ...doc }));
  const { config } = loadConfig({ file, env: {}, cwd: dir });
  const lines: string[] = [];
  const status = await runDoctor(config, { out: (l) => lines.push(l), now: Date.now });
  return { status, lines };
}

test('berth stopped, the central name pinned to berth: doctor names the loop and its one fix, not ECONNREFUSED', async () => {
  const dir = await tempDir();
  const port = await freePort();
  const { status, lines } = await doctor(dir, {
    http: { addr: `:${port}` },
    proxy: { remoteurl: `https://harbor.xing.com:${port}`, resolve: '127.0.0.1' },
  });
  const text = lines.join('\n');
  assert.equal(status, 1, text);
  assert.match(text, /FAIL loop +upstream default \(https:\/\/harbor\.xing\.com:\d+\) is this berth itself: .*127\.0\.0\.1:\d+ is where this berth listens/);
  assert.doesNotMatch(text, /ECONNREFUSED|hosts file/);
  assert.match(text, /fix: set proxy\.resolve to the central registry's real address$/m);
});

test('berth stopped, an IP upstream at berth: the fix is remoteurl, not a hosts file', async () => {
  const dir = await tempDir();
  const port = await freePort();
  const { lines } = await doctor(dir, { http: { addr: `127.0.0.1:${port}` }, proxy: { remoteurl: `http://127.0.0.1:${port}` } });
  const text = lines.join('\n');
  assert.match(text, /FAIL loop +.*127\.0\.0\.1 leads back to berth/);
  assert.match(text, /fix: set proxy\.remoteurl to the central registry's address, not berth's$/m);
  assert.doesNotMatch(text, /hosts file|resolve/);
});

test("an upstream showing a certificate of berth's own CA is a loop before any ca: advice; the client's message ends with the same fix", async () => {
  const dir = await tempDir();
  const ca = createCa('berth edge CA', 30);
  const leaf = issueCertificate(ca, { hosts: ['harbor.xing.com'], ips: ['127.0.0.1'], usage: 'server', days: 30 });
  const other = createCa('Harbor CA', 30);
  await writeFile(join(dir, 'harbor-ca.crt'), other.cert);
  const server = createHttpsServer({ cert: leaf.cert, key: leaf.key }, (_req, res) => res.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  after(() => new Promise((r) => server.close(r)));
  const { port } = server.address() as AddressInfo;
  const proxy = { remoteurl: `https://harbor.xing.com:${port}`, resolve: '127.0.0.1', ca: join(dir, 'harbor-ca.crt') };
  const { status, lines } = await doctor(dir, { http: { addr: `127.0.0.1:${await freePort()}` }, proxy });
  const text = lines.join('\n');
  assert.equal(status, 1, text);
  assert.match(text, /FAIL loop +upstream default .* is this berth itself: .*issued by berth edge CA/);
  assert.doesNotMatch(text, /proxy\.ca|FAIL tls/);
  const fix = /fix: (.*)$/m.exec(text)![1]!;
  const { config } = loadConfig({ file: join(dir, 'config.yml'), env: {}, cwd: dir });
  assert.ok(loopMessage(config.upstreams[0]!).endsWith(`; fix: ${fix}`), 'one fix, in the message and the fix: line');
});

test('doctor lists the verify: entries and the public keys it loaded', async () => {
  const dir = await tempDir();
  const { generateKeyPairSync } = await import('node:crypto');
  await writeFile(join(dir, 'cosign.pub'), generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }));
  const { status, lines } = await doctor(dir, { verify: [{ repositories: ['xing/*'], mode: 'warn', cosign: { keys: ['cosign.pub'] } }] });
  assert.equal(status, 0);
  assert.equal(lines[0], 'verify xing/* (warn)');
  assert.match(lines[1]!, /^ {2}ok {3}key {9}.*cosign\.pub \(ECDSA P-256\)$/);
});
