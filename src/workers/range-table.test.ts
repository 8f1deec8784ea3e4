/** @module workers/range-table.test — the primary's single-flight of range fetches across workers: overlaps are waited for, the rest claimed, waiters told how each fetch ended. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RANGE_FLIGHT_MS, RangeTable } from './range-table.js';

test('a span another worker fetches is waited for; the parts around it are claimed', () => {
  const table = new RangeTable(() => 0);
  const [a] = table.claim(1, 'd', 100, 199);
  assert.deepEqual(a, { from: 100, to: 199, flight: a!.flight, mine: true });
  const parts = table.claim(2, 'd', 50, 249);
  assert.deepEqual(
    parts.map((p) => [p.from, p.to, p.mine]),
    [
      [50, 99, true],
      [100, 199, false],
      [200, 249, true],
    ],
  );
  assert.equal(parts[1]!.flight, a.flight);
  // Another blob is another table.
  assert.equal(table.claim(2, 'e', 100, 199)[0]!.mine, true);
  // Worker 3 inside what 1 and 2 fetch: waits for both.
  assert.deepEqual(
    table.claim(3, 'd', 150, 220).map((p) => [p.from, p.to, p.mine]),
    [
      [150, 199, false],
      [200, 220, false],
    ],
  );
});

test('waiters are told when a fetch ends, and whether its bytes are there; a dead worker fails its fetches', () => {
  const table = new RangeTable(() => 0);
  const [a] = table.claim(1, 'd', 0, 99);
  table.claim(2, 'd', 0, 99);
  table.claim(3, 'd', 50, 60);
  assert.deepEqual(table.done(2, 'd', a!.flight, true), [], 'only the owner ends a fetch');
  assert.deepEqual(
    table.done(1, 'd', a!.flight, true).sort((x, y) => x.worker - y.worker),
    [
      { worker: 2, flight: a!.flight, ok: true },
      { worker: 3, flight: a!.flight, ok: true },
    ],
  );
  assert.equal(table.size, 0);
  assert.equal(table.claim(2, 'd', 0, 99)[0]!.mine, true, 'ended: fetched anew');
  const [b] = table.claim(1, 'd', 200, 299);
  table.claim(3, 'd', 200, 299);
  assert.deepEqual(table.gone(1), [{ worker: 3, flight: b!.flight, ok: false }]);
});

test('a fetch never reported done is not waited for past RANGE_FLIGHT_MS', () => {
  let now = 0;
  const table = new RangeTable(() => now);
  table.claim(1, 'd', 0, 99);
  now = RANGE_FLIGHT_MS - 1;
  assert.equal(table.claim(2, 'd', 0, 99)[0]!.mine, false);
  now = RANGE_FLIGHT_MS;
  assert.equal(table.claim(3, 'd', 0, 99)[0]!.mine, true, 'lapsed: fetched anew');
});

test("a fill's question: the fetches under way in a span, by start, claiming nothing; the asker is told when each ends", () => {
  const table = new RangeTable(() => 0);
  const [b] = table.claim(2, 'd', 500, 599);
  const [a] = table.claim(1, 'd', 100, 199);
  assert.deepEqual(
    table.under(3, 'd', 0, 549).map((p) => [p.from, p.to, p.flight, p.mine]),
    [
      [100, 199, a!.flight, false],
      [500, 599, b!.flight, false],
    ],
  );
  assert.deepEqual(table.under(3, 'd', 200, 499), [], 'the gap between them is not claimed');
  assert.equal(table.claim(1, 'd', 200, 499)[0]!.mine, true);
  assert.deepEqual(table.done(2, 'd', b!.flight, true), [{ worker: 3, flight: b!.flight, ok: true }]);
});
