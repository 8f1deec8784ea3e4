/** @module storage/leases.test — one open blob read by several streams: a destroyed stream leaves the others reading. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { BlobStore } from './blob-files.js';

async function drain(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

test('a stream destroyed mid-range (a cut upload attempt) does not close the handle the next attempt reads from', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-leases-'));
  try {
    const store = new BlobStore(root);
    await store.init();
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const writer = await store.createWriter();
    await writer.write(data);
    await writer.commit(digest, data.length);
    const blob = await store.open(digest);
    assert.ok(blob);
    const cut = blob.stream(0, data.length - 1);
    await new Promise<void>((resolve) => {
      cut.once('data', () => {
        cut.destroy(new Error('link cut'));
        resolve();
      });
    });
    await new Promise((resolve) => cut.once('close', resolve));
    const [whole, tail] = await Promise.all([drain(blob.stream(0, data.length - 1)), drain(blob.stream(1_000_000, data.length - 1))]);
    assert.ok(whole.equals(data));
    assert.ok(tail.equals(data.subarray(1_000_000)));
    await blob.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
