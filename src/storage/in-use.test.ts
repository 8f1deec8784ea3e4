/** @module storage/in-use.test — berth.lock: a burst of changes is written as its first and last state, and a clean stop leaves no record behind. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IN_USE_WRITE_GAP_MS, InUseRecord, readInUse } from './in-use.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(read: () => string[] | undefined, want: string[]): Promise<void> {
  for (let i = 0; i < 100 && JSON.stringify(read()) !== JSON.stringify(want); i++) await sleep(IN_USE_WRITE_GAP_MS / 20);
  assert.deepEqual(read(), want);
}

test('changes within the write gap are coalesced into one later write of the newest set; close removes the record for good', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-in-use-'));
  try {
    const record = new InUseRecord(root, () => 0);
    await record.open();
    const read = () => (readInUse(root) ? [...readInUse(root)!.inUse].sort() : undefined);
    assert.deepEqual(read(), []);
    record.changed(['sha256:a']);
    await eventually(read, ['sha256:a']);
    for (let i = 0; i < 100; i++) record.changed(i % 2 ? ['sha256:a', 'sha256:b'] : ['sha256:b']);
    record.changed(['sha256:a', 'sha256:c']);
    await eventually(read, ['sha256:a', 'sha256:c']);
    record.changed(['sha256:d']);
    await record.close();
    assert.equal(readInUse(root), undefined);
    await sleep(IN_USE_WRITE_GAP_MS * 1.5);
    assert.equal(readInUse(root), undefined, 'no write after close');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
