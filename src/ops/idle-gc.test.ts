/** @module ops/idle-gc.test — the idle collector collects once the process is quiet above its floor, never while memory moves. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdleCollector, fullCollection } from './idle-gc.js';

const MiB = 1024 * 1024;

function collector(start: number) {
  let held = start;
  let collections = 0;
  const c = new IdleCollector({
    held: () => held,
    collect: () => {
      collections++;
      held = start;
    },
  });
  return { c, set: (v: number) => (held = v), collections: () => collections };
}

test('a transfer leaves buffers behind: one collection once quiet, none while memory moves', () => {
  const { c, set, collections } = collector(3 * MiB);
  for (const v of [10, 20, 15, 30]) {
    set(v * MiB);
    assert.equal(c.tick(), false, 'busy: the figure moves');
  }
  assert.equal(c.tick(), true, 'quiet and 27 MiB above the floor');
  assert.equal(collections(), 1);
  assert.equal(c.tick(), false);
  assert.equal(c.tick(), false, 'back at the floor: nothing more to do');
  assert.equal(collections(), 1);
});

test('quiet near the floor: no collection', () => {
  const { c, set, collections } = collector(3 * MiB);
  set(5 * MiB);
  c.tick();
  c.tick();
  c.tick();
  assert.equal(collections(), 0);
});

test('a collection is followed by a trim; collectNow does both at once and sets the floor there', () => {
  const calls: string[] = [];
  let held = 40 * MiB;
  const c = new IdleCollector({
    held: () => held,
    collect: () => {
      calls.push('collect');
      held = 10 * MiB;
    },
    trim: () => calls.push('trim'),
  });
  c.collectNow();
  assert.deepEqual(calls, ['collect', 'trim']);
  held = 12 * MiB;
  c.tick();
  assert.equal(c.tick(), false, 'within the slack of the floor collectNow left');
  held = 30 * MiB;
  c.tick();
  assert.equal(c.tick(), true);
  assert.deepEqual(calls, ['collect', 'trim', 'collect', 'trim']);
});

test('node gives a full collection on request', () => {
  const collect = fullCollection();
  assert.equal(typeof collect, 'function');
  collect?.();
});
