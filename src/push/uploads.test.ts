/** @module push/uploads.test — upload sessions shared by two processes on one store (each request sees the bytes the other appended), and on a full disk. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { digestOf } from '../oci/digest.js';
import type { OciError } from '../oci/errors.js';
import { BlobStore } from '../storage/blob-files.js';
import { openPushDatabase } from '../storage/push-db.js';
import { SqliteUploadSessions } from '../storage/upload-rows.js';
import { UploadManager } from './uploads.js';
import type { Target } from '../upstream/target.js';

async function* once(b: Buffer): AsyncGenerator<Uint8Array> {
  yield b;
}

test('chunks appended alternately by two managers of one store (two workers) complete with the right digest', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-uploads-'));
  const blobs = new BlobStore(dir);
  await blobs.init();
  // Each process opens the store itself: its own database handle, its own session map.
  const manager = () =>
    new UploadManager({
      blobs,
      rows: new SqliteUploadSessions(openPushDatabase(dir), Date.now),
      logger: pino({ level: 'silent' }),
      now: Date.now,
      purging: { enabled: false, ageMs: 0, intervalMs: 0 },
    });
  const [a, b] = [manager(), manager()];
  const target = { key: '', repository: 'app', upstream: undefined } as unknown as Target;
  const parts = [randomBytes(70_000), randomBytes(50_000), randomBytes(30_000)];
  try {
    const created = await a.create(target);
    let at = 0;
    for (const [i, part] of parts.entries()) {
      const m = i % 2 === 0 ? a : b;
      const s = await m.get(target, created.id);
      assert.equal(m.offset(s), at, `request ${i} sees the ${at} bytes already received`);
      at = await m.append(s, once(part), { start: at, end: at + part.length - 1 }, part.length);
    }
    const whole = Buffer.concat(parts);
    const done = await a.finish(await a.get(target, created.id), digestOf(whole));
    assert.deepEqual(done, { digest: digestOf(whole), size: whole.length });
  } finally {
    await a.stop();
    await b.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a full disk: a session that cannot be recorded leaves no file; a chunk that cannot be written leaves nothing of itself', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-uploads-'));
  const blobs = new BlobStore(dir);
  await blobs.init();
  const rows = new SqliteUploadSessions(openPushDatabase(dir), Date.now);
  const full = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
  const told: string[] = [];
  const m = new UploadManager({
    blobs,
    rows,
    logger: pino({ level: 'silent' }),
    now: Date.now,
    purging: { enabled: false, ageMs: 0, intervalMs: 0 },
    onDiskFull: (where) => told.push(where),
  });
  const target = { key: '', repository: 'app', upstream: undefined } as unknown as Target;
  try {
    const insert = rows.insert.bind(rows);
    rows.insert = () => Promise.reject(full());
    await assert.rejects(m.create(target), (err: OciError) => err.status === 507 && err.code === 'UNAVAILABLE');
    assert.deepEqual(await readdir(blobs.uploadsDir), [], 'no file for a session that failed');
    assert.deepEqual(await rows.all(), []);
    rows.insert = insert;
    const first = randomBytes(1000);
    const s = await m.create(target);
    await m.append(s, once(first), undefined, undefined);
    // The disk fills after 600 bytes of the next chunk.
    async function* fills(): AsyncGenerator<Uint8Array> {
      yield randomBytes(600);
      throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    }
    await assert.rejects(m.append(await m.get(target, s.id), fills(), undefined, undefined), (err: OciError) => err.status === 507);
    assert.equal((await stat(join(blobs.uploadsDir, s.id))).size, 1000, 'the failed chunk left nothing');
    assert.deepEqual(told, ['the upload session', 'the upload']);
    const again = await m.get(target, s.id);
    assert.equal(m.offset(again), 1000);
    const second = randomBytes(500);
    await m.append(again, once(second), undefined, undefined);
    const whole = Buffer.concat([first, second]);
    assert.deepEqual(await m.finish(await m.get(target, s.id), digestOf(whole)), { digest: digestOf(whole), size: 1500 });
  } finally {
    await m.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
