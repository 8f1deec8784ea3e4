/** @module util/after-quiet.test — start-up's one-off work waits for a quiet second, runs in order one piece at a time, and never waits past its bound. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AfterQuiet } from './after-quiet.js';
import type { SetTimer } from './unref-timer.js';

/** A clock and timers that move only when told. */
function fakeTime() {
  let now = 0;
  let timers: Array<{ at: number; fn: () => void }> = [];
  const timer: SetTimer = (fn, ms) => {
    const t = { at: now + ms, fn };
    timers.push(t);
    return () => {
      timers = timers.filter((x) => x !== t);
    };
  };
  const advance = async (ms: number) => {
    const until = now + ms;
    for (;;) {
      // Let an asynchronous piece settle (and arm the next timer) first.
      await new Promise((r) => setImmediate(r));
      const due = timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      timers = timers.filter((t) => t !== due);
      now = due.at;
      due.fn();
    }
    now = until;
  };
  return { now: () => now, timer, advance };
}

const gate = (clock: ReturnType<typeof fakeTime>) => new AfterQuiet({ quietMs: 1000, maxWaitMs: 30_000, now: clock.now, timer: clock.timer });

test('a piece waits while a request is in flight, and for a quiet second after the last one ends', async () => {
  const clock = fakeTime();
  const quiet = gate(clock);
  const ran: number[] = [];
  quiet.begin();
  quiet.run(() => ran.push(clock.now()));
  await clock.advance(5000);
  assert.deepEqual(ran, [], 'not while a request is in flight');
  quiet.end();
  await clock.advance(500);
  quiet.begin();
  quiet.end();
  await clock.advance(900);
  assert.deepEqual(ran, [], 'a request within the second puts it off again');
  await clock.advance(100);
  assert.deepEqual(ran, [6500], 'a second after the last request ended');
});

test('pieces run in order, an asynchronous one finished before the next, and the next waits for quiet again', async () => {
  const clock = fakeTime();
  const quiet = gate(clock);
  const ran: string[] = [];
  let finish!: () => void;
  quiet.run(
    () =>
      new Promise<void>((resolve) => {
        ran.push('a');
        finish = resolve;
      }),
  );
  quiet.run(() => ran.push('b'));
  await clock.advance(1000);
  assert.deepEqual(ran, ['a']);
  assert.equal(quiet.pending, 2);
  // A request arrives while the first piece runs: the second waits for it and a quiet second.
  quiet.begin();
  finish();
  await clock.advance(3000);
  assert.deepEqual(ran, ['a']);
  quiet.end();
  await clock.advance(1000);
  assert.deepEqual(ran, ['a', 'b']);
  assert.equal(quiet.pending, 0);
});

test('a process never quiet still runs a piece once it has waited its bound; a failing piece does not stop the next', async () => {
  const clock = fakeTime();
  const quiet = gate(clock);
  const ran: number[] = [];
  quiet.begin();
  quiet.run(() => {
    throw new Error('reported by the piece itself');
  });
  quiet.run(() => ran.push(clock.now()));
  await clock.advance(29_999);
  assert.deepEqual(ran, []);
  await clock.advance(1);
  assert.deepEqual(ran, [30_000], 'both pieces waited since they were queued');
});

test('a piece queued with its own bound waits at most that long', async () => {
  const clock = fakeTime();
  const quiet = gate(clock);
  const ran: number[] = [];
  quiet.begin();
  quiet.run(() => ran.push(clock.now()), 5000);
  await clock.advance(5000);
  assert.deepEqual(ran, [5000]);
});

test('stop drops the pieces not yet run', async () => {
  const clock = fakeTime();
  const quiet = gate(clock);
  let ran = false;
  quiet.run(() => (ran = true));
  quiet.stop();
  quiet.run(() => (ran = true));
  await clock.advance(60_000);
  assert.equal(ran, false);
});
