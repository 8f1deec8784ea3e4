/** @module storage/kept-ranges.test — two processes keeping ranges of one blob (workers of a host) both find their spans in the map on disk: a save merges the map there, it does not overwrite it. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeptStore } from './kept-ranges.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function* bytes(n: number): AsyncGenerator<Uint8Array> {
  yield Buffer.alloc(n, 7);
}

test('a worker saving its map keeps the spans another worker saved there meanwhile', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-kept-'));
  dirs.push(dir);
  const pathOf = (d: string) => join(dir, d.replace(':', '/'));
  // Each worker has a store of its own over the same directory; both start before either saved.
  const one = await new KeptStore(pathOf).forRanges('sha256:x', 10_000);
  const two = await new KeptStore(pathOf).forRanges('sha256:x', 10_000);
  for await (const _ of one.keep(bytes(100), 0, 99, assert.fail));
  for await (const _ of two.keep(bytes(100), 5000, 5099, assert.fail));
  const map = JSON.parse(await readFile(`${pathOf('sha256:x')}.ranges`, 'utf8')) as { ranges: number[][] };
  assert.deepEqual(map.ranges, [
    [0, 100],
    [5000, 5100],
  ]);
  // A third process starting now sees both.
  const three = await new KeptStore(pathOf).load('sha256:x', 10_000);
  assert.equal(three?.presentEnd(0), 100);
  assert.equal(three?.presentEnd(5050), 5100);
});
