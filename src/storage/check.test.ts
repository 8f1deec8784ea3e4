/** @module storage/check.test — reconciling the index with the files: unknown files adopted, records without a file forgotten, the rest left alone. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BlobStore } from './blob-files.js';
import { openLocalIndex } from './local.js';
import { reconcile } from './check.js';

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('reconcile adopts files the index lacks, forgets records whose file is gone, and keeps the rest', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-check-'));
  const index = openLocalIndex(root, Date.now);
  try {
    const blobs = new BlobStore(root);
    await blobs.init();
    const write = async (text: string) => {
      const bytes = Buffer.from(text);
      const digest = digestOf(bytes);
      await mkdir(dirname(blobs.path(digest)), { recursive: true });
      await writeFile(blobs.path(digest), bytes);
      return { digest, size: bytes.length };
    };
    const known = await write('known');
    await index.blobIndex.put(known.digest, known.size);
    const unknown = await write('unknown to the index');
    const gone = digestOf(Buffer.from('gone'));
    await index.blobIndex.put(gone, 4);

    assert.deepEqual(await reconcile(blobs, index.blobIndex), { adopted: 1, forgotten: 1 });
    assert.equal((await index.blobIndex.get(unknown.digest))?.size, unknown.size);
    assert.equal(await index.blobIndex.get(gone), undefined);
    assert.deepEqual((await index.blobIndex.ownDigests()).sort(), [known.digest, unknown.digest].sort());
    assert.deepEqual(await reconcile(blobs, index.blobIndex), { adopted: 0, forgotten: 0 }, 'a second pass finds nothing to do');
  } finally {
    index.close();
    await rm(root, { recursive: true, force: true });
  }
});
