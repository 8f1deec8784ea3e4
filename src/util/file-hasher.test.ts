/** @module util/file-hasher.test — digests from the worker threads match node's own, several files at once; a missing file is an error; close ends the threads. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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
