/** @module e2e/uploads.test — upload sessions: resumable across a berth restart, abandoned ones expired and cleaned up on start-up. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { sleep, waitFor } from '../fixtures/proc.js';
import { assertError, call, digestOf } from '../fixtures/oci-http.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function plainBerth(purging?: { age: string; interval: string }, root?: string): Promise<Berth> {
  const storage = purging ? { maintenance: { uploadpurging: { enabled: true, ...purging } } } : {};
  const b = await startBerth({ config: { version: 0.1, storage }, ...(root ? { root } : {}) });
  cleanups.push(() => b.stop());
  return b;
}

const uploadFiles = (b: Berth) => readdir(path.join(b.root, 'uploads'));

test('an upload in progress survives a berth restart (SIGKILL) and completes with the right bytes', async () => {
  const first = await plainBerth();
  const part1 = randomBytes(700_000);
  const part2 = randomBytes(300_000);
  const start = await call(first.url, 'POST', '/v2/resume/me/blobs/uploads/');
  const location = start.header('location')!;
  assert.equal((await call(first.url, 'PATCH', location, { body: part1, headers: { 'content-range': `0-${part1.length - 1}` } })).status, 202);
  await first.kill('SIGKILL');
  const second = await plainBerth(undefined, first.root);
  const status = await call(second.url, 'GET', location);
  assert.equal(status.status, 204);
  assert.equal(status.header('range'), `0-${part1.length - 1}`);
  const patched = await call(second.url, 'PATCH', location, {
    body: part2,
    headers: { 'content-range': `${part1.length}-${part1.length + part2.length - 1}` },
  });
  assert.equal(patched.status, 202);
  const all = Buffer.concat([part1, part2]);
  const put = await call(second.url, 'PUT', `${location}?digest=${digestOf(all)}`);
  assert.equal(put.status, 201, put.body.toString());
  assert.ok((await call(second.url, 'GET', put.header('location')!)).body.equals(all));
  assert.deepEqual(await uploadFiles(second), []);
});

test('an abandoned upload expires: its URL answers BLOB_UPLOAD_UNKNOWN and its temp file is gone', async () => {
  const b = await plainBerth({ age: '2s', interval: '1s' });
  const start = await call(b.url, 'POST', '/v2/abandon/me/blobs/uploads/');
  await call(b.url, 'PATCH', start.header('location')!, { body: randomBytes(200_000) });
  assert.equal((await uploadFiles(b)).length, 1);
  await waitFor(async () => (await call(b.url, 'GET', start.header('location')!)).status === 404, 20_000, { what: 'the upload to expire' });
  assertError(await call(b.url, 'PATCH', start.header('location')!, { body: randomBytes(10) }), 404, 'BLOB_UPLOAD_UNKNOWN');
  assert.deepEqual(await uploadFiles(b), []);
  assert.ok((await b.logLines()).some((l) => l['msg'] === 'expired an abandoned upload'));
});

test('on start-up, expired uploads and stray temp files are removed', async () => {
  const first = await plainBerth({ age: '2s', interval: '1h' });
  const start = await call(first.url, 'POST', '/v2/startup/me/blobs/uploads/');
  await call(first.url, 'PATCH', start.header('location')!, { body: randomBytes(100_000) });
  await first.kill('SIGKILL');
  await writeFile(path.join(first.root, 'uploads', 'stray'), randomBytes(1000));
  await sleep(2_500);
  const second = await plainBerth({ age: '2s', interval: '1h' }, first.root);
  assert.deepEqual(await uploadFiles(second), []);
  assertError(await call(second.url, 'GET', start.header('location')!), 404, 'BLOB_UPLOAD_UNKNOWN');
  const line = (await second.logLines()).find((l) => l['msg'] === 'removed abandoned uploads');
  assert.equal(line?.['removed'], 2);
});
