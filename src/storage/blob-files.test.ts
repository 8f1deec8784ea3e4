/** @module storage/blob-files.test — copyIn: a whole file, a region of a file or a stream stored under its digest once its copy hashes right; a wrong digest or size leaves nothing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BlobStore } from './blob-files.js';
import { digestOf } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { FileHasher } from '../util/file-hasher.js';

test('copyIn stores a file whose copy matches its digest, and refuses a wrong digest or size leaving nothing behind', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-blob-files-'));
  const hasher = new FileHasher(2);
  try {
    const store = new BlobStore(path.join(dir, 'store'));
    await store.init();
    const bytes = randomBytes(3 << 20);
    const file = path.join(dir, 'layer');
    await writeFile(file, bytes);
    const digest = digestOf(bytes);
    await store.copyIn(file, digest, bytes.length, hasher);
    assert.deepEqual(await readFile(store.path(digest)), bytes);
    assert.equal(await store.size(digest), bytes.length);

    const other = digestOf(Buffer.from('something else'));
    await assert.rejects(store.copyIn(file, other, bytes.length, hasher), (err: unknown) => err instanceof OciError && err.code === 'DIGEST_INVALID');
    await assert.rejects(store.copyIn(file, other, bytes.length + 1, hasher), (err: unknown) => err instanceof OciError && err.code === 'SIZE_INVALID');
    assert.equal(await store.size(other), undefined);

    // A stream (a tar's entry) is written as it comes, then its copy is hashed; never past its size.
    const streamed = randomBytes(5 << 20);
    const pieces = async function* (b: Buffer) {
      for (let at = 0; at < b.length; at += 1 << 20) yield b.subarray(at, at + (1 << 20));
    };
    let counted = 0;
    await store.copyIn(pieces(streamed), digestOf(streamed), streamed.length, hasher, (n) => (counted += n));
    assert.deepEqual(await readFile(store.path(digestOf(streamed))), streamed);
    assert.equal(counted, streamed.length);
    const longer = Buffer.concat([streamed, Buffer.from('x')]);
    await assert.rejects(
      store.copyIn(pieces(longer), digestOf(longer), streamed.length, hasher),
      (err: unknown) => err instanceof OciError && err.code === 'SIZE_INVALID',
    );
    const flipped = Buffer.from(streamed);
    flipped[4096] = flipped[4096]! ^ 1;
    await assert.rejects(
      store.copyIn(pieces(flipped), digestOf(streamed), streamed.length, hasher),
      (err: unknown) => err instanceof OciError && err.code === 'DIGEST_INVALID',
    );

    // A region of a larger file (a tar's entry) is copied and hashed at once; one cut short or wrong is refused.
    const tar = path.join(dir, 'bundle.tar');
    const region = randomBytes((2 << 20) + 5);
    await writeFile(tar, Buffer.concat([randomBytes(1536), region, randomBytes(700)]));
    await store.copyIn({ file: tar, offset: 1536 }, digestOf(region), region.length, hasher);
    assert.deepEqual(await readFile(store.path(digestOf(region))), region);
    await assert.rejects(
      store.copyIn({ file: tar, offset: 1537 }, digestOf(region), region.length, hasher),
      (err: unknown) => err instanceof OciError && err.code === 'DIGEST_INVALID',
    );
    await assert.rejects(
      store.copyIn({ file: tar, offset: 1536 + 701 }, digestOf(region), region.length, hasher),
      (err: unknown) => err instanceof OciError && err.code === 'SIZE_INVALID',
    );
    assert.deepEqual(await readdir(store.tmpDir), [], 'no copy left in tmp/');
  } finally {
    await hasher.close();
    await rm(dir, { recursive: true, force: true });
  }
});
