/** @module cli/serve.test — how many processes serve (http.workers, auto meaning one per core), and which faults mean the primary is gone. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../config/load.js';
import { primaryGone, workerCount } from './serve.js';

test('http.workers: auto is one per core from three cores up, one process on two; a count is taken as given', () => {
  const config = (workers?: string) => loadConfig({ env: workers ? { REGISTRY_HTTP_WORKERS: workers } : {}, cwd: '.' }).config;
  assert.equal(workerCount(config(), 8).count, 8);
  assert.equal(workerCount(config('auto'), 0).count, 1);
  assert.deepEqual(workerCount(config('auto'), 2), { count: 1, limitedBy: 'few cores', cores: 2 });
  assert.equal(workerCount(config('auto'), 3).count, 3);
  assert.equal(workerCount(config('2'), 2).count, 2, 'two workers when asked for');
  assert.equal(workerCount(config('3'), 16).count, 3);
  assert.equal(workerCount(config('1'), 16).count, 1);
});

test('a send to a killed primary is told apart from a bug: closed IPC channel or EPIPE on the child_process pipe', () => {
  const pipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
  pipe.stack = 'Error: write EPIPE\n    at target._send (node:internal/child_process:878:20)';
  assert.equal(primaryGone(pipe), true);
  assert.equal(primaryGone(Object.assign(new Error('Channel closed'), { code: 'ERR_IPC_CHANNEL_CLOSED' })), true);
  const socket = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
  socket.stack = 'Error: write EPIPE\n    at afterWriteDispatched (node:internal/stream_base_commons:161:15)';
  assert.equal(primaryGone(socket), false, 'a client socket is not the primary');
  assert.equal(primaryGone(new TypeError('x is undefined')), false);
});
