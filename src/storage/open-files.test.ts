/** @module storage/open-files.test — kept descriptors: shared, bounded, closed on delete and when idle, never reused for a file replaced since. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readSync } from 'node:fs';
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenFiles as Kept, type OpenFile } from './open-files.js';
import { BlobStore } from './blob-files.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-open-files-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Whether the handle gets closed (a close is queued on the thread pool, so it is waited for; a closed FileHandle's fd is -1). */
async function closedSoon(fh: { readonly fd: number }): Promise<boolean> {
  for (let i = 0; i < 200 && fh.fd !== -1; i++) await new Promise((r) => setTimeout(r, 5));
  return fh.fd === -1;
}

/** The store's cache, its `reused` flag left out (tested through BlobStore below). */
class OpenFiles extends Kept {
  async get(key: string, path: string): Promise<OpenFile | undefined> {
    return (await this.acquire(key, path))?.file;
  }
}

function firstByte(fd: number): number {
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, 0);
  return b[0]!;
}

test('a released file is reused by the next reader, and concurrent first readers share one open', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'a');
    await writeFile(path, 'hello');
    const files = new OpenFiles();
    const [a, b] = await Promise.all([files.get('a', path), files.get('a', path)]);
    assert.ok(a && b);
    assert.equal(a.fh.fd, b.fh.fd);
    assert.equal(a.size, 5);
    files.release('a', a);
    files.release('a', b);
    const c = await files.get('a', path);
    assert.equal(c?.fh.fd, a.fh.fd, 'the kept descriptor is reused');
    files.release('a', c);
    assert.equal(files.size, 1);
    files.close();
    assert.ok(await closedSoon(a.fh));
  });
});

test('at most `max` unused descriptors stay open, the least recently used closing first', async () => {
  await withDir(async (dir) => {
    const files = new OpenFiles(Date.now, 2);
    const handles: Array<{ readonly fd: number }> = [];
    for (const name of ['a', 'b', 'c', 'd']) {
      await writeFile(join(dir, name), name);
      const f = await files.get(name, join(dir, name));
      handles.push(f!.fh);
      files.release(name, f!);
    }
    assert.equal(files.size, 2);
    assert.ok(await closedSoon(handles[0]!));
    assert.ok(await closedSoon(handles[1]!));
    assert.equal(firstByte(handles[3]!.fd), 'd'.charCodeAt(0));
    files.close();
  });
});

test('a file dropped (deleted) while read keeps its reader going and closes after it; the next reader finds it gone', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'a');
    await writeFile(path, 'abc');
    const files = new OpenFiles();
    const f = await files.get('a', path);
    files.drop('a');
    await unlink(path);
    assert.equal(firstByte(f!.fh.fd), 'a'.charCodeAt(0), 'the reader still reads');
    assert.equal(await files.get('a', path), undefined);
    files.release('a', f!);
    assert.ok(await closedSoon(f!.fh));
    assert.equal(files.size, 0);
  });
});

test('a file deleted or replaced behind its back is never served from the old descriptor', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'a');
    await writeFile(path, 'old bytes');
    const files = new OpenFiles();
    const old = await files.get('a', path);
    files.release('a', old!);
    // Replaced by rename, as a blob stored again arrives.
    await writeFile(join(dir, 'tmp'), 'new');
    await rename(join(dir, 'tmp'), path);
    const fresh = await files.get('a', path);
    assert.equal(fresh?.size, 3);
    assert.equal(firstByte(fresh.fh.fd), 'n'.charCodeAt(0));
    assert.ok(await closedSoon(old!.fh), 'the replaced file is let go');
    files.release('a', fresh);
    await unlink(path);
    assert.equal(await files.get('a', path), undefined, 'deleted: not found, whatever is kept');
    assert.ok(await closedSoon(fresh.fh));
  });
});

test('descriptors unused for the idle time close at the sweep; one in use stays', async () => {
  await withDir(async (dir) => {
    let now = 0;
    const files = new OpenFiles(() => now, 10, 1000);
    await writeFile(join(dir, 'a'), 'a');
    await writeFile(join(dir, 'b'), 'b');
    const a = await files.get('a', join(dir, 'a'));
    const b = await files.get('b', join(dir, 'b'));
    files.release('a', a!);
    now = 1500;
    files.sweep();
    assert.ok(await closedSoon(a!.fh));
    assert.equal(firstByte(b!.fh.fd), 'b'.charCodeAt(0));
    files.release('b', b!);
    now = 2000;
    files.sweep();
    assert.equal(files.size, 1, 'b was used 500 ms ago');
    now = 2500;
    files.sweep();
    assert.equal(files.size, 0);
    assert.ok(await closedSoon(b!.fh));
  });
});

test('BlobStore: a stored blob read twice opens once; eviction closes its descriptor so the space is freed', async () => {
  await withDir(async (dir) => {
    const store = new BlobStore(dir);
    await store.init();
    const data = randomBytes(100_000);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await store.put(digest, data);
    const first = await store.open(digest);
    assert.ok(first);
    const fh = (first as unknown as { fh: { fd: number } }).fh;
    assert.ok((await first.readAll()).equals(data));
    await first.close();
    assert.equal(first.reused, false);
    const second = await store.open(digest);
    assert.equal((second as unknown as { fh: { fd: number } }).fh, fh);
    assert.equal(second?.reused, true, 'the cache skips its row check for a kept descriptor');
    assert.equal(await store.evict(digest, () => undefined), false, 'held while read');
    await second.close();
    assert.equal(await store.evict(digest, () => undefined), true);
    assert.ok(await closedSoon(fh));
    assert.equal(await store.open(digest), undefined);
    store.closeFiles();
  });
});
