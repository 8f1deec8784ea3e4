/** @module http/range.test — Range semantics the conformance suite checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange } from './range.js';

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
