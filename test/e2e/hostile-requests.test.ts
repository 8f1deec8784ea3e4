/** @module e2e/hostile-requests.test — malformed, oversized and racing requests against a plain berth: no crash, no 500, no leaked descriptors, envelopes only. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { LOOPBACK, makeTempDir, removeDir, run, sleep } from '../fixtures/proc.js';
import { assertError, call, digestOf, makeManifest, pushManifest, OCI_MANIFEST } from '../fixtures/oci-http.js';
import { fdCount, fromAddress, rawBody, rawExchange } from '../fixtures/hostile.js';

let berth: Berth;

before(async () => {
  berth = await startBerth({ config: { version: 0.1, storage: { delete: { enabled: true } } } });
});

after(async () => {
  // stop() fails the test run if berth crashed or logged an uncaught error at any point.
  await berth?.stop();
});

async function alive(b: Berth): Promise<void> {
  assert.equal((await call(b.url, 'GET', '/v2/')).status, 200, 'berth still answers');
}

/** Sends a chunked body of `total` bytes as fast as the server takes it; resolves with the status line. */
function chunkedPut(port: number, pathName: string, total: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, LOOPBACK);
    let answer = '';
    s.on('connect', () => {
      s.write(`PUT ${pathName} HTTP/1.1\r\nHost: berth\r\nContent-Type: ${OCI_MANIFEST}\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length;
          if (!s.write(`${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n`)) return void s.once('drain', pump);
        }
        s.write('0\r\n\r\n');
      };
      pump();
    });
    s.on('data', (d) => {
      answer += d.toString('latin1');
      // The client hangs up as soon as it has the answer, mid-body.
      if (answer.includes('\r\n\r\n')) s.destroy();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(answer.split('\r\n')[0] ?? ''));
  });
}

test('a chunked manifest PUT far over 4 MiB: 413, and berth lives on', async () => {
  assert.match(await chunkedPut(berth.port, '/v2/big/manifest/manifests/v1', 16 * 1024 * 1024), /^HTTP\/1\.1 413/);
  // The crash came about 2 s after the client hung up.
  await sleep(3_000);
  await alive(berth);
});

test('an upload cancelled (DELETE) while its PATCH is still sending: no 500, no crash, the upload is gone', async () => {
  const start = await call(berth.url, 'POST', '/v2/race/cancel/blobs/uploads/');
  const location = start.header('location')!;
  const s = net.connect(berth.port, LOOPBACK);
  let patchAnswer = '';
  s.on('data', (d) => {
    patchAnswer += d.toString('latin1');
  });
  s.on('error', () => undefined);
  await new Promise<void>((resolve) => s.on('connect', () => resolve()));
  s.write(`PATCH ${location} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/octet-stream\r\nContent-Length: 8000000\r\n\r\n`);
  s.write(randomBytes(1_000_000));
  await sleep(300);
  const del = await call(berth.url, 'DELETE', location);
  assert.equal(del.status, 204, del.body.toString());
  // Further bytes of the PATCH meet a cancelled upload.
  for (let i = 0; i < 7 && !s.destroyed; i++) {
    s.write(randomBytes(1_000_000));
    await sleep(50);
  }
  await sleep(1_000);
  s.destroy();
  assert.doesNotMatch(patchAnswer, /^HTTP\/1\.1 500/);
  assertError(await call(berth.url, 'GET', location), 404, 'BLOB_UPLOAD_UNKNOWN');
  await sleep(2_500);
  await alive(berth);
});

test('a client leaving mid-upload is logged as client behaviour, with status 499, not as an error', async () => {
  const start = await call(berth.url, 'POST', '/v2/leave/me/blobs/uploads/');
  const location = start.header('location')!;
  const s = net.connect(berth.port, LOOPBACK);
  s.on('error', () => undefined);
  await new Promise<void>((resolve) => s.on('connect', () => resolve()));
  s.write(`PATCH ${location} HTTP/1.1\r\nHost: berth\r\nContent-Length: 5000000\r\n\r\n`);
  s.write(randomBytes(500_000));
  await sleep(300);
  s.destroy();
  await sleep(1_000);
  const uuid = location.split('/').pop()!.split('?')[0]!;
  const lines = (await berth.logLines()).filter((l) => String(l['path'] ?? '').includes(uuid) || l['msg'] === 'unexpected error while handling a request');
  const patch = lines.find((l) => l['msg'] === 'request' && l['method'] === 'PATCH');
  assert.equal(patch?.['status'], 499, JSON.stringify(lines));
  assert.equal(patch?.['complete'], false);
  assert.deepEqual(
    lines.filter((l) => Number(l['level']) >= 50),
    [],
  );
});

test('a full disk during an upload: 507 with an envelope, and berth lives on', async (t) => {
  const mountpoint = await makeTempDir('berth-tmpfs-up-');
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountpoint]);
  } catch (err) {
    await removeDir(mountpoint);
    t.skip(`cannot mount tmpfs here: ${(err as Error).message}`);
    return;
  }
  await mkdir(path.join(mountpoint, 'store'));
  const small = await startBerth({ root: path.join(mountpoint, 'store') });
  try {
    const start = await call(small.url, 'POST', '/v2/disk/full/blobs/uploads/');
    const patch = await fromAddress(new URL(start.header('location')!, small.url).toString(), { method: 'PATCH', body: randomBytes(6 * 1024 * 1024) });
    assert.equal(patch.status, 507, patch.body.toString());
    assert.equal((JSON.parse(patch.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'UNAVAILABLE');
    await sleep(2_500);
    await alive(small);
  } finally {
    await small.stop();
    await run('umount', [mountpoint]).catch(() => undefined);
    await removeDir(mountpoint);
  }
});

test('upload sessions hold no file descriptor between requests, and one client may open only so many', async () => {
  const m = makeManifest(randomBytes(100), [randomBytes(2000)]);
  assert.equal((await pushManifest(berth.url, 'fds/app', m, 'v1')).status, 201);
  const before = await fdCount(berth.service.pid);
  const statuses: number[] = [];
  const locations: string[] = [];
  for (let i = 0; i < 320; i++) {
    const r = await call(berth.url, 'POST', '/v2/fds/app/blobs/uploads/');
    statuses.push(r.status);
    if (r.status === 202) locations.push(r.header('location')!);
  }
  const after = await fdCount(berth.service.pid);
  assert.ok(after - before < 40, `descriptors grew from ${before} to ${after} over 320 sessions`);
  // Earlier tests may have left one or two sessions of this client open.
  const opened = statuses.filter((s) => s === 202).length;
  assert.ok(opened <= 128 && opened >= 120, `the per-client bound of open uploads (${opened} opened)`);
  assert.ok(
    statuses.slice(opened).every((s) => s === 429),
    'beyond it, 429',
  );
  const again = await call(berth.url, 'GET', '/v2/fds/app/manifests/v1', { headers: { accept: OCI_MANIFEST } });
  assert.equal(again.status, 200);
  assert.equal(again.header('docker-content-digest'), m.digest);
  for (const l of locations) assert.equal((await call(berth.url, 'DELETE', l)).status, 204);
  assert.equal((await call(berth.url, 'POST', '/v2/fds/app/blobs/uploads/')).status, 202, 'cancelled sessions free their places');
});

test('an I/O error reading a stored manifest is reported as an error, never as MANIFEST_UNKNOWN', async () => {
  const m = makeManifest(randomBytes(100), [randomBytes(1000)]);
  assert.equal((await pushManifest(berth.url, 'io/app', m, 'v1')).status, 201);
  const hex = m.digest.slice('sha256:'.length);
  const file = path.join(berth.root, 'blobs', 'sha256', hex.slice(0, 2), hex);
  // A directory where the file was: reading it fails with EISDIR, an I/O error rather than absence.
  await rm(file);
  await mkdir(file);
  const r = await call(berth.url, 'GET', `/v2/io/app/manifests/${m.digest}`, { headers: { accept: OCI_MANIFEST } });
  assert.notEqual(r.status, 404, r.body.toString());
  assert.ok(r.status >= 500, r.body.toString());
  assert.ok(Array.isArray(r.json<{ errors: unknown[] }>().errors));
  await rm(file, { recursive: true });
});

test('HEAD of a digest ending in %00 is a 400 DIGEST_INVALID envelope, not a 500', async () => {
  const hex = randomBytes(32).toString('hex');
  const head = await call(berth.url, 'HEAD', `/v2/any/repo/blobs/sha256:${hex}%00`);
  assert.equal(head.status, 400);
  const get = await call(berth.url, 'GET', `/v2/any/repo/blobs/sha256:${hex}%00`);
  assertError(get, 400, 'DIGEST_INVALID');
});

test('a referrer with annotations nested 20,000 deep is refused, and the referrers list keeps working', async () => {
  const subject = makeManifest(randomBytes(100), [randomBytes(500)]);
  assert.equal((await pushManifest(berth.url, 'deep/app', subject, 'v1')).status, 201);
  const config = randomBytes(50);
  const configDigest = digestOf(config);
  await pushManifest(berth.url, 'deep/app', makeManifest(config, []), 'cfg');
  const nested = `${'{"a":'.repeat(20_000)}"x"${'}'.repeat(20_000)}`;
  const body = Buffer.from(
    `{"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${configDigest}","size":50},"layers":[],"subject":{"mediaType":"${OCI_MANIFEST}","digest":"${subject.digest}","size":${subject.bytes.length}},"annotations":{"deep":${nested}}}`,
  );
  const put = await call(berth.url, 'PUT', `/v2/deep/app/manifests/${digestOf(body)}`, { body, headers: { 'content-type': OCI_MANIFEST } });
  assertError(put, 400, 'MANIFEST_INVALID');
  const referrers = await call(berth.url, 'GET', `/v2/deep/app/referrers/${subject.digest}`);
  assert.equal(referrers.status, 200, referrers.body.toString());
});

test('a manifest listing 27,411 layers is refused cheaply; one naming 1,000 unknown blobs gets a short error', async () => {
  const layer = (i: number) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${i.toString(16).padStart(64, '0')}`, size: 1 });
  const doc = (n: number) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'f'.repeat(64)}`, size: 1 },
        layers: Array.from({ length: n }, (_, i) => layer(i)),
      }),
    );
  const huge = doc(27_411);
  const refused = await call(berth.url, 'PUT', '/v2/amp/app/manifests/v1', { body: huge, headers: { 'content-type': OCI_MANIFEST } });
  assertError(refused, 400, 'MANIFEST_INVALID');
  assert.match(refused.body.toString(), /limit is 1024/);
  const unknown = await call(berth.url, 'PUT', '/v2/amp/app/manifests/v2', { body: doc(1000), headers: { 'content-type': OCI_MANIFEST } });
  assertError(unknown, 400, 'MANIFEST_BLOB_UNKNOWN');
  assert.ok(unknown.body.length < 4096, `error body of ${unknown.body.length} bytes`);
  assert.match(unknown.body.toString(), /and 991 more/);
});

test('an HTTP/1.1 request without Host, a CONNECT and an unknown Expect all get an OCI envelope', async () => {
  const noHost = await rawExchange(berth.port, 'GET /v2/ HTTP/1.1\r\nConnection: close\r\n\r\n');
  assert.match(noHost, /^HTTP\/1\.1 400 /);
  assert.match(noHost, /content-type: application\/json/i);
  assert.equal((rawBody(noHost)['errors'] as Array<{ code: string }>)[0]?.code, 'UNSUPPORTED');
  const connect = await rawExchange(berth.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
  assert.match(connect, /^HTTP\/1\.1 405 /);
  assert.equal((rawBody(connect)['errors'] as Array<{ code: string }>)[0]?.code, 'UNSUPPORTED');
  const expect = await rawExchange(berth.port, 'GET /v2/ HTTP/1.1\r\nHost: berth\r\nExpect: teapot\r\nConnection: close\r\n\r\n');
  assert.match(expect, /^HTTP\/1\.1 417 /);
  assert.equal((rawBody(expect)['errors'] as Array<{ code: string }>)[0]?.code, 'UNSUPPORTED');
  await alive(berth);
});

test('a hostile Range header (15,500 spaces) is parsed in linear time: 80 of them do not hold berth up', { timeout: 20_000 }, async () => {
  const data = randomBytes(1000);
  const m = makeManifest(randomBytes(100), [data]);
  assert.equal((await pushManifest(berth.url, 'range/app', m, 'v1')).status, 201);
  const hostile = `bytes=${' '.repeat(15_500)}x`;
  // Before, each took about 0.45 s of event loop: 80 of them 36 s, far past this test's timeout.
  for (let i = 0; i < 80; i++) {
    const r = await call(berth.url, 'GET', `/v2/range/app/blobs/${m.layers[0]!.digest}`, { headers: { range: hostile } });
    assert.equal(r.status, 200, 'an unparseable Range is ignored: the whole blob');
    assert.ok(r.body.equals(data));
  }
});
