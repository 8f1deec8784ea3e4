/** @module upstream/budget.test — the WAN budget's token bucket: the cap, node pulls first, the background window. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WanBudget, WorkPriority } from './budget.js';

test('a full bucket grants at once; an empty one does not', () => {
  let t = 0;
  const b = new WanBudget({ rate: 1_000_000, now: () => t });
  assert.equal(b.tryTake(1, false), false, 'starts empty');
  t = 1_000;
  assert.equal(b.tryTake(64 * 1024, false), true);
  assert.equal(b.tryTake(64 * 1024, false), false, 'at most one bucket (64 KiB) of burst');
});

test('background waits while node pulls use the budget, and outside its window', async () => {
  let t = 10_000;
  const b = new WanBudget({ rate: 1_000_000, now: () => t });
  t += 1_000;
  assert.equal(b.tryTake(60_000, false), true, 'a node pull using most of the bucket');
  t += 10;
  assert.equal(b.tryTake(1_000, true), false, 'background yields to a node pull under way');
  t += 1_000;
  assert.equal(b.tryTake(1_000, true), true, 'and takes what is left once node pulls pause');
  const now = new Date(2026, 0, 1, 12, 0).getTime();
  const w = new WanBudget({ window: { startMin: 60, endMin: 300, text: '01:00-05:00' }, now: () => now });
  assert.equal(w.tryTake(1, true), false, 'outside the window');
  assert.equal(w.tryTake(1, false), true, 'node pulls are never held');
  assert.equal(w.windowWaitMs(), 13 * 3_600_000);
});

test('WorkPriority marks everything started inside background()', async () => {
  const p = new WorkPriority();
  assert.equal(p.isBackground(), false);
  const seen = await p.background(async () => {
    await new Promise((r) => setTimeout(r, 1));
    return p.isBackground();
  });
  assert.equal(seen, true);
  assert.equal(p.isBackground(), false);
});

test('backgroundWhile: background while its test holds, foreground after (read again at each ask); inside background() it stays background', async () => {
  const p = new WorkPriority();
  let waited = false;
  const mark = await p.backgroundWhile(
    () => !waited,
    async () => p.current(),
  );
  assert.equal(mark(), true);
  waited = true;
  assert.equal(mark(), false, 'a client now waits for it');
  const nested = await p.background(() =>
    p.backgroundWhile(
      () => false,
      async () => p.current(),
    ),
  );
  assert.equal(nested(), true);
});

test('budget accounting: a range-started fill counts as background until a client waits for it, then as foreground', async () => {
  const b = new WanBudget({ now: Date.now });
  const p = new WorkPriority();
  let waited = false;
  await p.backgroundWhile(
    () => !waited,
    async () => {
      const mark = p.current();
      await b.take(1000, mark());
      waited = true;
      await b.take(500, mark());
    },
  );
  await b.take(64, p.isBackground());
  assert.deepEqual(b.granted, { background: 1000, foreground: 564 });
});
