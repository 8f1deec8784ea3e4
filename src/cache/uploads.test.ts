/** @module cache/uploads.test — upload sessions shared by two processes on one store: each request sees the bytes the other appended. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { digestOf } from '../oci/digest.js';
import { BlobStore } from '../storage/blobs.js';
import { openPushDatabase } from '../storage/push-db.js';
import { SqliteUploadSessions } from '../storage/upload-rows.js';
import { UploadManager } from './uploads.js';
import type { Target } from './target.js';

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
