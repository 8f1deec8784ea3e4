/** @module util/file-hasher.test — digests from the worker threads match node's own, several files at once; a missing file is an error; close ends the threads. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileHasher } from './file-hasher.js';

test('files hashed at once on the threads give the digests and sizes node computes; a missing file is refused', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-file-hasher-'));
  const hasher = new FileHasher(2);
  try {
    // Sizes around the worker's 4 MiB read buffer, and an empty file.
    const sizes = [0, 1, (4 << 20) - 1, 4 << 20, (4 << 20) + 1, 9 << 20];
    const files = await Promise.all(
      sizes.map(async (size, i) => {
        const bytes = randomBytes(size);
        const file = path.join(dir, `f${i}`);
        await writeFile(file, bytes);
        return { file, size, sha256: createHash('sha256').update(bytes).digest('hex'), sha512: createHash('sha512').update(bytes).digest('hex') };
      }),
    );
    const seen = await Promise.all(files.map((f) => hasher.hash(f.file, 'sha256')));
    assert.deepEqual(
      seen,
      files.map((f) => ({ digest: `sha256:${f.sha256}`, size: f.size })),
    );
    assert.deepEqual(await hasher.hash(files[5]!.file, 'sha512'), { digest: `sha512:${files[5]!.sha512}`, size: 9 << 20 });
    await assert.rejects(hasher.hash(path.join(dir, 'absent'), 'sha256'), /ENOENT/);
    // The pool still answers after an error.
    assert.equal((await hasher.hash(files[1]!.file, 'sha256')).size, 1);
  } finally {
    await hasher.close();
    await rm(dir, { recursive: true, force: true });
  }
});

for (const kernelCopy of [true, false]) {
  test(`a range is hashed alone; a copied range lands at its offset in the target, hashed as written; a range past the end copies what there is (${kernelCopy ? 'copy_file_range' : 'through a thread'})`, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-file-hasher-'));
    const hasher = new FileHasher(2, kernelCopy);
    const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    try {
      const bytes = randomBytes((9 << 20) + 123);
      const file = path.join(dir, 'src');
      await writeFile(file, bytes);
      const range = { offset: 1000, length: (5 << 20) + 7 };
      const part = bytes.subarray(range.offset, range.offset + range.length);
      assert.deepEqual(await hasher.hash(file, 'sha256', range), { digest: sha(part), size: part.length });
      // Two regions of one target filled at once, neither truncating the other.
      const target = path.join(dir, 'target');
      const [first, second] = await Promise.all([
        hasher.copy(file, range, target, 512, 'sha256'),
        hasher.copy(file, { offset: 0, length: 100 }, target, 512 + range.length, 'sha256'),
      ]);
      assert.deepEqual(first, { digest: sha(part), size: part.length });
      assert.deepEqual(second, { digest: sha(bytes.subarray(0, 100)), size: 100 });
      const written = await readFile(target);
      assert.equal(written.length, 512 + range.length + 100);
      assert.ok(written.subarray(0, 512).equals(Buffer.alloc(512)));
      assert.ok(written.subarray(512, 512 + range.length).equals(part));
      assert.ok(written.subarray(512 + range.length).equals(bytes.subarray(0, 100)));
      const tail = await hasher.copy(file, { offset: bytes.length - 10, length: 50 }, path.join(dir, 'tail'), 0, 'sha256');
      assert.deepEqual(tail, { digest: sha(bytes.subarray(bytes.length - 10)), size: 10 });
      await assert.rejects(hasher.copy(path.join(dir, 'absent'), range, target, 0, 'sha256'), /ENOENT/);
    } finally {
      await hasher.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}
