/** @module cache/fill-pacing.test — a range-started fill waits for its blob's ranges to be quiet, pauses while range fetches run, and is foreground only while a whole-blob reader is there; on a fake clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QuietStart, RangePacer, WholeReaders, paced } from './fill-pacing.js';
import type { SetTimer } from '../util/unref-timer.js';

/** A clock and timers moved by hand. */
function fakeClock() {
  let now = 0;
  let timers: Array<{ at: number; fn: () => void }> = [];
  const timer: SetTimer = (fn, ms) => {
    const t = { at: now + ms, fn };
    timers.push(t);
    return () => (timers = timers.filter((x) => x !== t));
  };
  const advance = async (ms: number): Promise<void> => {
    now += ms;
    const due = timers.filter((t) => t.at <= now);
    timers = timers.filter((t) => t.at > now);
    for (const t of due) t.fn();
    await new Promise((r) => setImmediate(r));
  };
  return { now: () => now, timer, advance, pending: () => timers.length };
}

test('a deferred start runs once the key has been quiet for the time set, and waits again for each new range', async () => {
  const clock = fakeClock();
  const quiet = new QuietStart(1000, clock.timer);
  let started = 0;
  quiet.enter('a');
  quiet.enter('a');
  quiet.leave('a', () => started++);
  await clock.advance(5000);
  assert.equal(started, 0, 'not while another ranged request of the blob runs');
  quiet.leave('a', () => started++);
  await clock.advance(999);
  assert.equal(started, 0, 'not before the quiet time');
  quiet.enter('a');
  await clock.advance(2000);
  assert.equal(started, 0, 'a new range puts it off');
  quiet.leave('a', () => started++);
  await clock.advance(1000);
  assert.equal(started, 1, 'started once quiet');
  assert.equal(quiet.size, 0);
  await clock.advance(5000);
  assert.equal(started, 1, 'once only');
});

test('the quiet time of an upstream (rangequiet) holds its fill back that long instead', async () => {
  const clock = fakeClock();
  const quiet = new QuietStart(1000, clock.timer);
  let started = 0;
  quiet.enter('a');
  quiet.leave('a', () => started++, 60_000);
  await clock.advance(59_999);
  assert.equal(started, 0, 'not after the default second');
  await clock.advance(1);
  assert.equal(started, 1);
  quiet.enter('b');
  quiet.leave('b', () => started++, 0);
  await clock.advance(0);
  assert.equal(started, 2, '0: as soon as the ranges end');
});

test('a whole-blob reader starts a deferred fill at once; forget drops it', async () => {
  const clock = fakeClock();
  const quiet = new QuietStart(1000, clock.timer);
  let started = 0;
  quiet.enter('a');
  quiet.leave('a', () => started++);
  quiet.now('a');
  assert.equal(started, 1);
  assert.equal(clock.pending(), 0, 'its timer is cancelled');
  quiet.enter('b');
  quiet.leave('b', () => started++);
  quiet.forget('b');
  await clock.advance(2000);
  assert.equal(started, 1, 'a forgotten key starts nothing');
  // A request that began before the key was forgotten starts its fill when it ends.
  quiet.leave('c', () => started++);
  assert.equal(started, 2);
});

test('a background fill waits while range fetches of its upstream run, at most the time set', async () => {
  const clock = fakeClock();
  const pacer = new RangePacer(clock.now, clock.timer, 5000);
  await pacer.idle('up');
  const end1 = pacer.begin('up');
  const end2 = pacer.begin('up');
  pacer.begin('other');
  let idle = false;
  pacer.idle('up').then(() => (idle = true), assert.fail);
  await clock.advance(100);
  end1();
  await clock.advance(0);
  assert.equal(idle, false, 'another fetch still runs');
  end2();
  end2();
  await clock.advance(0);
  assert.equal(idle, true, 'idle once every fetch of the upstream ended');
  // A fetch never ended (its reader went away) holds the fill for maxMs, not for good.
  pacer.begin('up');
  let late = false;
  pacer.idle('up').then(() => (late = true), assert.fail);
  await clock.advance(4999);
  assert.equal(late, false);
  await clock.advance(1);
  await clock.advance(0);
  assert.equal(late, true);
  assert.equal(pacer.busy('up'), false);
});

test('a paced body reads no further while held', async () => {
  const clock = fakeClock();
  const pacer = new RangePacer(clock.now, clock.timer);
  let pulled = 0;
  async function* body() {
    for (let i = 0; i < 3; i++) {
      pulled++;
      yield new Uint8Array([i]);
    }
  }
  const end = pacer.begin('up');
  const it = paced(
    body(),
    () => pacer.busy('up'),
    () => pacer.idle('up'),
  )[Symbol.asyncIterator]();
  assert.deepEqual((await it.next()).value, new Uint8Array([0]));
  const seen: Array<IteratorResult<Uint8Array>> = [];
  it.next().then((r) => seen.push(r), assert.fail);
  await clock.advance(0);
  assert.equal(seen.length, 0, 'held while the range fetch runs');
  assert.equal(pulled, 1, 'the upstream body is not read meanwhile');
  end();
  await clock.advance(0);
  assert.deepEqual(seen[0]?.value, new Uint8Array([1]));
});

test('a fill is foreground while a whole-blob reader is there, and background again once the last leaves', () => {
  const readers = new WholeReaders<object>();
  const fill = {};
  assert.equal(readers.has(fill), false);
  const leave1 = readers.join(fill);
  const leave2 = readers.join(fill);
  leave1();
  leave1();
  assert.equal(readers.has(fill), true, 'one reader left, leaving twice counts once');
  leave2();
  assert.equal(readers.has(fill), false);
  const leave3 = readers.join(fill);
  assert.equal(readers.has(fill), true, 'a new reader makes it foreground again');
  leave3();
  assert.equal(readers.has(fill), false);
});
