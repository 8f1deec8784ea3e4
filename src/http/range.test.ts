/** @module http/range.test — Range semantics the conformance suite checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_RANGES, parseRange, parseRanges } from './range.js';

test('ranges are clamped, suffixes honoured, impossible ones unsatisfiable', () => {
  assert.deepEqual(parseRange('bytes=500-1499', 2000), { kind: 'range', start: 500, end: 1499 });
  assert.deepEqual(parseRange('bytes=500-', 2000), { kind: 'range', start: 500, end: 1999 });
  assert.deepEqual(parseRange('bytes=-500', 2000), { kind: 'range', start: 1500, end: 1999 });
  assert.deepEqual(parseRange('bytes=500-99999', 2000), { kind: 'range', start: 500, end: 1999 });
  assert.deepEqual(parseRange('bytes=-5000', 2000), { kind: 'range', start: 0, end: 1999 });
  assert.deepEqual(parseRange('bytes=500-0', 2000), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=2000-', 2000), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange(undefined, 2000), { kind: 'none' });
  assert.deepEqual(parseRange('items=1-2', 2000), { kind: 'none' });
  assert.deepEqual(parseRange('bytes=1-2,4-5', 2000), { kind: 'none' });
});

test('several ranges are sorted and coalesced where they overlap or touch; gaps stay parts', () => {
  assert.deepEqual(parseRanges('bytes=0-99,1000-1099,50000-50099', 64 << 20), {
    kind: 'ranges',
    ranges: [
      { start: 0, end: 99 },
      { start: 1000, end: 1099 },
      { start: 50000, end: 50099 },
    ],
  });
  assert.deepEqual(parseRanges('bytes=500-599, 0-9 ,10-19,550-700', 2000), {
    kind: 'ranges',
    ranges: [
      { start: 0, end: 19 },
      { start: 500, end: 700 },
    ],
  });
  // A suffix and an open end among them; empty list elements are allowed (RFC 9110 §5.6.1).
  assert.deepEqual(parseRanges('bytes=,-10,,0-0,1990-,', 2000), {
    kind: 'ranges',
    ranges: [
      { start: 0, end: 0 },
      { start: 1990, end: 1999 },
    ],
  });
});

test('several ranges: unsatisfiable ones are dropped, none left is 416; past the bounds the blob is sent whole', () => {
  assert.deepEqual(parseRanges('bytes=5000-6000,10-19', 2000), { kind: 'ranges', ranges: [{ start: 10, end: 19 }] });
  assert.deepEqual(parseRanges('bytes=5000-6000,3000-', 2000), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRanges('bytes=0-1499,500-1999', 2000), { kind: 'none' }, 'adding up to more than the blob');
  assert.deepEqual(parseRanges('bytes=0-999,1000-1999', 2000), { kind: 'ranges', ranges: [{ start: 0, end: 1999 }] });
  const many = (n: number) => 'bytes=' + Array.from({ length: n }, (_, i) => `${i * 10}-${i * 10 + 1}`).join(',');
  assert.equal(parseRanges(many(MAX_RANGES), 1 << 20).kind, 'ranges');
  assert.deepEqual(parseRanges(many(MAX_RANGES + 1), 1 << 20), { kind: 'none' });
  assert.deepEqual(parseRanges('bytes=0-1,x', 2000), { kind: 'none' });
  assert.deepEqual(parseRanges('bytes=0-1,-', 2000), { kind: 'none' });
  assert.deepEqual(parseRanges('bytes=,', 2000), { kind: 'none' });
});

test('one range: parseRanges agrees with parseRange', () => {
  for (const h of ['bytes=500-1499', 'bytes=500-', 'bytes=-500', 'bytes=500-99999', 'bytes=500-0', 'bytes=2000-', 'items=1-2', 'bytes=-0']) {
    const one = parseRange(h, 2000);
    const many = parseRanges(h, 2000);
    assert.deepEqual(many, one.kind === 'range' ? { kind: 'ranges', ranges: [{ start: one.start, end: one.end }] } : one, h);
  }
});
