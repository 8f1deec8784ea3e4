/** @module cache/kept-eviction.test — kept ranges count toward maxsize by their bytes, go in least-recently-used order with blobs (never while in use), go after keptAgeMs unused, and are counted again from disk after a restart. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { pino } from 'pino';
import { Evictor, keptSweepMs, planEviction, type EvictionLimits } from './eviction.js';
import { testStore } from './cache-testkit.js';
import { BlobStore } from '../storage/blob-files.js';
import type { KeptUse } from '../storage/kept-ranges.js';

const limits = (maxsize: number, keptAgeMs = 0): EvictionLimits => ({ maxsize, lowwatermark: 1, ttlByUpstream: new Map(), keptAgeMs });
const blob = (digest: string, size: number, lastAccess: number) => ({ digest, size, lastAccess, pinned: false });
const kept = (digest: string, bytes: number, lastUse: number): KeptUse => ({ digest, bytes, lastUse });
const digestOf = (c: string) => `sha256:${c.repeat(64)}`;

test('kept ranges count toward maxsize and take their place in the least-recently-used order', () => {
  const view = { blobs: [blob('old', 100, 100), blob('new', 100, 900)], edges: [], holders: [], kept: [kept('k1', 50, 50), kept('k2', 50, 500)] };
  const plan = planEviction(view, limits(200), 1000, () => false);
  assert.equal(plan.totalBefore, 300);
  assert.deepEqual(
    plan.evict.map((e) => [e.digest, e.kept === true]),
    [
      ['k1', true],
      ['old', false],
    ],
  );
  assert.equal(plan.totalAfter, 150);
});

test('kept ranges in use (a fill or a range answer reads them) are never chosen', () => {
  const view = { blobs: [], edges: [], holders: [], kept: [kept('k1', 50, 50), kept('k2', 50, 60)] };
  const plan = planEviction(view, limits(10), 1000, (d) => d === 'k1');
  assert.deepEqual(
    plan.evict.map((e) => e.digest),
    ['k2'],
  );
});

test('kept ranges unused past keptAgeMs go whatever the size; used since, they stay', () => {
  const view = { blobs: [blob('b', 100, 0)], edges: [], holders: [], kept: [kept('aged', 5, 100), kept('fresh', 5, 900)] };
  const plan = planEviction(view, limits(0, 500), 1000, () => false);
  assert.deepEqual(
    plan.evict.map((e) => [e.digest, e.reason]),
    [['aged', 'keptranges']],
  );
  assert.equal(planEviction(view, limits(0, 0), 1000, () => false).evict.length, 0, 'age 0: only maxsize removes them');
  assert.equal(keptSweepMs(2_000), 1_000);
  assert.equal(keptSweepMs(24 * 3600_000), 600_000);
});

/** Keeps `bytes` bytes at offset 0 of a blob of `size`, as a range fetch would. */
async function keepBytes(blobs: BlobStore, digest: string, bytes: number, size = 1 << 20): Promise<void> {
  const k = await blobs.kept.forRanges(digest, size);
  const body = (async function* () {
    yield Buffer.alloc(bytes, 7);
  })();
  for await (const chunk of k.keep(body, 0, bytes - 1, (err) => assert.fail(err))) assert.equal(chunk.length, bytes);
  blobs.kept.forget(digest);
}

test('an eviction pass removes kept ranges from disk in LRU order, leaves held ones alone, and a new store counts what is left', async () => {
  let clock = Date.now();
  const store = await testStore(() => clock);
  const evictorOf = (blobs: BlobStore, l: EvictionLimits) =>
    new Evictor({ blobs, index: store.ports.index, logger: pino({ level: 'silent' }), now: () => clock, limits: l, inUse: () => false });
  try {
    const [a, b, c] = [digestOf('a'), digestOf('b'), digestOf('c')];
    await keepBytes(store.blobs, a, 4000);
    await keepBytes(store.blobs, b, 3000);
    await keepBytes(store.blobs, c, 2000);
    // Last used: a long ago, b a while ago, c just now.
    await store.blobs.kept.touch(a, clock - 30_000);
    await store.blobs.kept.touch(b, clock - 20_000);
    const listed = await store.blobs.kept.list();
    assert.deepEqual(listed.map((k) => [k.digest, k.bytes]).sort(), [
      [a, 4000],
      [b, 3000],
      [c, 2000],
    ]);
    // 9000 kept bytes over maxsize 6000: a (the oldest) goes, then 5000 is under.
    const first = await evictorOf(store.blobs, limits(6000)).run('test');
    assert.equal(first.evicted, 1);
    assert.equal(first.freedBytes, 4000);
    await assert.rejects(stat(`${store.dir}/partial/sha256/${'a'.repeat(64)}`), { code: 'ENOENT' });
    await assert.rejects(stat(`${store.dir}/partial/sha256/${'a'.repeat(64)}.ranges`), { code: 'ENOENT' });
    // A restart: a new store on the same root counts what is on disk.
    const again = new BlobStore(store.dir);
    await again.init();
    assert.deepEqual((await again.kept.list()).map((k) => k.digest).sort(), [b, c]);
    // b is held by a reader: the pass skips it and takes c.
    const release = await again.hold(b);
    const second = await evictorOf(again, limits(1000)).run('test');
    release();
    assert.equal(second.evicted, 1);
    assert.deepEqual(
      (await again.kept.list()).map((k) => k.digest),
      [b],
    );
    // Unused past the age: the sweep's pass removes it.
    clock += 60_000;
    const aged = await evictorOf(again, limits(0, 30_000)).run('kept ranges unused');
    assert.equal(aged.evicted, 1);
    assert.deepEqual(await again.kept.list(), []);
  } finally {
    await store.remove();
  }
});
