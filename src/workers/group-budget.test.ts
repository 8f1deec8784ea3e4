/** @module workers/group-budget.test — workers spend grants of the primary's one budget: asked a grant at a time, never more than they use, each priority apart. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WanBudget } from '../upstream/budget.js';
import { GroupBudget, grantSize } from './group-budget.js';

test("two workers drawing from the primary's budget together get its rate, not twice it", async () => {
  const rate = 2_000_000;
  const primary = new WanBudget({ rate, now: Date.now });
  const asked = { foreground: 0, background: 0 };
  const worker = () =>
    new GroupBudget({
      ask: async (n, background) => {
        asked[background ? 'background' : 'foreground'] += n;
        // Over IPC: the reply comes on a later turn.
        await new Promise((r) => setImmediate(r));
        await primary.take(n, background);
      },
      grant: grantSize(rate),
      onLost: () => assert.fail('the primary is there'),
    });
  const workers = [worker(), worker()];
  // The budget's timers do not hold the process open (unref); this does, for the test.
  const alive = setInterval(() => undefined, 1_000);
  const started = Date.now();
  let taken = 0;
  await Promise.all(
    workers.map(async (w) => {
      for (let i = 0; i < 24; i++) {
        await w.take(32 * 1024, false);
        taken += 32 * 1024;
      }
    }),
  );
  clearInterval(alive);
  const seconds = (Date.now() - started) / 1000;
  // 1.5 MiB at 2 MB/s: about 0.8 s for both together (0.4 s if each had its own budget).
  assert.ok(seconds > 0.6, `${taken} bytes in ${seconds.toFixed(2)} s: above the rate`);
  assert.ok(asked.foreground >= taken && asked.foreground <= taken + 2 * grantSize(rate), `asked ${asked.foreground} for ${taken}`);
  assert.equal(asked.background, 0);
});

test('a grant is spent locally before asking again; background has a share of its own', async () => {
  const asks: Array<[number, boolean]> = [];
  const b = new GroupBudget({ ask: async (n, bg) => void asks.push([n, bg]), grant: 100_000, onLost: () => undefined });
  assert.equal(b.tryTake(10, false), false, 'nothing granted yet');
  await b.take(30_000, false);
  assert.ok(b.tryTake(70_000, false), 'the rest of the grant');
  assert.equal(b.tryTake(1, false), false);
  assert.equal(b.tryTake(1, true), false, 'foreground grants are not background ones');
  await b.take(250_000, true);
  assert.deepEqual(asks, [
    [100_000, false],
    [250_000, true],
  ]);
});

test('without its primary a worker lets the bytes pass and says so', async () => {
  const lost: string[] = [];
  const b = new GroupBudget({
    ask: () => Promise.reject(new Error('channel closed')),
    grant: 1_000,
    onLost: (err) => lost.push(err.message),
  });
  await b.take(10, false);
  assert.deepEqual(lost, ['channel closed']);
});
