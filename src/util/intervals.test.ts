/** @module util/intervals.test — the presence map against a plain set of held bytes: merging, lookups and gaps agree with it for any sequence of spans. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { addInterval, gaps, heldBytes, isPresenceMap, nextStart, presentEnd, type Interval } from './intervals.js';

const SIZE = 200;
const span = fc.tuple(fc.nat(SIZE), fc.nat(SIZE)).map(([a, b]): Interval => [Math.min(a, b), Math.max(a, b)]);

function build(spans: readonly Interval[]): { list: Interval[]; held: boolean[] } {
  let list: Interval[] = [];
  const held = new Array<boolean>(SIZE).fill(false);
  for (const [s, e] of spans) {
    list = addInterval(list, s, e);
    for (let i = s; i < e; i++) held[i] = true;
  }
  return { list, held };
}

test('adding spans in any order gives a well-formed map holding exactly their union', () => {
  fc.assert(
    fc.property(fc.array(span, { maxLength: 20 }), (spans) => {
      const { list, held } = build(spans);
      assert.ok(isPresenceMap(list, SIZE), JSON.stringify(list));
      assert.equal(heldBytes(list), held.filter(Boolean).length);
      for (let pos = 0; pos < SIZE; pos++) {
        const end = presentEnd(list, pos);
        if (!held[pos]) {
          assert.equal(end, undefined);
          const next = nextStart(list, pos);
          const expected = held.indexOf(true, pos);
          assert.equal(next, expected === -1 ? undefined : expected);
          continue;
        }
        assert.ok(end !== undefined && end > pos);
        for (let i = pos; i < end; i++) assert.ok(held[i]);
        assert.ok(end === SIZE || !held[end], 'the interval ends where held bytes end');
      }
    }),
  );
});

test('gaps of a span are exactly its bytes not held, in order, never touching', () => {
  fc.assert(
    fc.property(fc.array(span, { maxLength: 20 }), span, (spans, [start, end]) => {
      const { list, held } = build(spans);
      const found = gaps(list, start, end);
      const missing: number[] = [];
      for (const [s, e] of found) for (let i = s; i < e; i++) missing.push(i);
      const expected: number[] = [];
      for (let i = start; i < end; i++) if (!held[i]) expected.push(i);
      assert.deepEqual(missing, expected);
      for (let i = 1; i < found.length; i++) assert.ok(found[i]![0] > found[i - 1]![1]);
    }),
  );
});

test('a malformed map from disk is refused', () => {
  assert.ok(isPresenceMap([], 10));
  assert.ok(
    isPresenceMap(
      [
        [0, 2],
        [3, 10],
      ],
      10,
    ),
  );
  for (const bad of [
    [
      [0, 2],
      [2, 4],
    ],
    [
      [3, 4],
      [0, 1],
    ],
    [[0, 11]],
    [[1, 1]],
    [[0, 1.5]],
    [0, 1],
    'x',
    [[0]],
  ])
    assert.equal(isPresenceMap(bad, 10), false);
});
