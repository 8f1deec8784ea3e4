/** @module cache/eviction.test — LRU order, shared layers counted once, pins, in-use and just-stored content kept, ttl from last pull. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Evictor, planEviction, type EvictionLimits } from './eviction.js';
import { testStore } from './cache-testkit.js';
import type { EvictionView } from '../ports/blob-index.js';

const limits = (maxsize: number, ttl = 0): EvictionLimits => ({ maxsize, lowwatermark: 0.9, ttlByUpstream: new Map([['up', ttl]]) });

/** Two images sharing layer `shared`; image A pulled long ago, image B recently. */
function view(): EvictionView {
  return {
    blobs: [
      { digest: 'mA', size: 10, lastAccess: 100, pinned: false },
      { digest: 'lA', size: 100, lastAccess: 100, pinned: false },
      { digest: 'shared', size: 100, lastAccess: 100, pinned: false },
      { digest: 'mB', size: 10, lastAccess: 900, pinned: false },
      { digest: 'lB', size: 100, lastAccess: 50, pinned: false },
    ],
    edges: [
      { parent: 'mA', child: 'lA' },
      { parent: 'mA', child: 'shared' },
      { parent: 'mB', child: 'lB' },
      { parent: 'mB', child: 'shared' },
    ],
    holders: ['mA', 'lA', 'shared', 'mB', 'lB'].map((digest) => ({ digest, upstream: 'up' })),
  };
}

test('the least recently used image goes first; a layer a recent image needs stays', () => {
  const plan = planEviction(view(), limits(250), 1000, () => false);
  const evicted = plan.evict.map((e) => e.digest).sort();
  assert.deepEqual(evicted, ['lA', 'mA']);
  assert.equal(plan.totalBefore, 320);
  assert.equal(plan.totalAfter, 210);
});

test('shared content counts once and a blob in use is never chosen', () => {
  const plan = planEviction(view(), limits(100), 1000, (d) => d === 'lA');
  const evicted = plan.evict.map((e) => e.digest);
  assert.ok(!evicted.includes('lA'));
  assert.ok(plan.totalAfter <= 100 || evicted.length === 4);
});

test('pinned manifests protect what they reference', () => {
  const v = view();
  v.blobs[0]!.pinned = true;
  const plan = planEviction(v, limits(1), 1000, () => false);
  const evicted = plan.evict.map((e) => e.digest);
  for (const kept of ['mA', 'lA', 'shared']) assert.ok(!evicted.includes(kept), kept);
});

test('ttl counts from the last pull of anything that needs the content', () => {
  const plan = planEviction(view(), limits(0, 500), 1000, () => false);
  assert.deepEqual(plan.evict.map((e) => e.digest).sort(), ['lA', 'mA']);
  assert.ok(plan.evict.every((e) => e.reason === 'ttl'));
});

test('while its upstream is unreachable, content only it holds is kept past maxsize and ttl; a full disk still evicts it', () => {
  const v = view();
  v.blobs.push({ digest: 'local', size: 100, lastAccess: 10, pinned: false });
  v.holders.push({ digest: 'local', upstream: 'other' });
  const down = (u: string) => u === 'up';
  const plan = planEviction(v, limits(100, 500), 1000, () => false, undefined, down);
  assert.deepEqual(
    plan.evict.map((e) => e.digest),
    ['local'],
    'only content another (reachable) upstream can give back',
  );
  const full = planEviction(v, limits(100), 1000, () => false, 100);
  assert.ok(full.evict.length >= 4, 'a full disk is a hard limit');
});

test('a pushed layer no manifest references yet is kept for the grace, even when it is all there is to evict; a full disk still evicts it', () => {
  const v = view();
  // The upload of a push in progress: stored at 950, its manifest not sent yet.
  v.blobs.push({ digest: 'pushed', size: 100, lastAccess: 950, pinned: false });
  v.holders.push({ digest: 'pushed', upstream: 'behind' });
  const down = (u: string) => u === 'up';
  const graced = { ...limits(100), unreferencedGraceMs: 100 };
  assert.deepEqual(planEviction(v, graced, 1000, () => false, undefined, down).evict, [], 'cached content is stranded, the upload waits for its manifest');
  assert.deepEqual(
    planEviction(v, graced, 1100, () => false, undefined, down).evict.map((e) => e.digest),
    ['pushed'],
    'a manifest that never came: after the grace it is an ordinary blob',
  );
  v.edges.push({ parent: 'mB', child: 'pushed' });
  assert.deepEqual(
    planEviction(v, graced, 1000, () => false, undefined, down).evict.map((e) => e.digest),
    ['pushed'],
    'referenced, it is cached content like any other',
  );
  v.edges.pop();
  assert.ok(
    planEviction(v, graced, 1000, () => false, 50).evict.some((e) => e.digest === 'pushed'),
    'a full disk is a hard limit',
  );
});

test('content stored within minAgeMs (or needed by a manifest stored then) stays while the store cannot reach its target; a full disk takes it', () => {
  const v = view();
  for (const b of v.blobs) b.storedAt = b.lastAccess;
  const recent = { ...limits(50), minAgeMs: 200 };
  // At 1000, image B (stored at 900) is recent: only image A's own blobs can go, the target out of reach.
  const plan = planEviction(v, recent, 1000, () => false);
  assert.deepEqual(plan.evict.map((e) => e.digest).sort(), ['lA', 'mA']);
  assert.equal(plan.tooRecentBytes, 210, 'mB, lB and the layer it shares with A');
  assert.equal(planEviction(v, recent, 1200, () => false).tooRecentBytes, 0, 'aged, it goes like the rest');
  assert.equal(planEviction(v, recent, 1000, () => false, 50).evict.length, 5, 'a full disk is a hard limit');
});

test('a pass that kept recent content above maxsize runs again once it has aged', async () => {
  let clock = 1_000_000;
  const store = await testStore(() => clock);
  const evicted: number[] = [];
  const evictor = new Evictor({
    blobs: store.blobs,
    index: store.ports.index,
    logger: pino({ level: 'silent' }),
    now: () => clock,
    limits: { maxsize: 10, lowwatermark: 0.5, ttlByUpstream: new Map(), minAgeMs: 50 },
    inUse: () => false,
    onEvicted: (_reason, count) => evicted.push(count),
  });
  try {
    await store.put('a blob stored a moment ago');
    const first = await evictor.run('maxsize exceeded');
    assert.equal(first.evicted, 0, 'too recent to evict');
    clock += 60;
    await waitUntil(() => evicted.length > 0);
    assert.deepEqual(evicted, [1], 'the timer ran the pass again and it took the blob');
  } finally {
    await evictor.stop();
    await store.remove();
  }
});

async function waitUntil(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
}
