/** @module workers/worker-flags.test — a worker gets the small young generation unless the operator set one, and keeps every flag of theirs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workerExecArgv } from './worker-flags.js';

test('adds the young-generation size to the primary flags, unless the operator chose a size', () => {
  assert.deepEqual(workerExecArgv([], undefined), ['--max-semi-space-size=2']);
  assert.deepEqual(workerExecArgv(['--enable-source-maps'], ''), ['--enable-source-maps', '--max-semi-space-size=2']);
  assert.deepEqual(workerExecArgv(['--max-semi-space-size=8'], undefined), ['--max-semi-space-size=8']);
  assert.deepEqual(workerExecArgv([], '--max-old-space-size=512 --max-semi-space-size=16'), []);
  assert.deepEqual(workerExecArgv([], '--max-heap-size=300'), [], 'max-heap-size may not be combined with a semi-space size');
});
