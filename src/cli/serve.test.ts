/** @module cli/serve.test — how many processes serve: http.workers, auto meaning one per core. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../config/load.js';
import { workerCount } from './serve.js';

test('http.workers: auto is one per core (at least one); a count is taken as given', () => {
  const config = (workers?: string) => loadConfig({ env: workers ? { REGISTRY_HTTP_WORKERS: workers } : {}, cwd: '.' }).config;
  assert.equal(workerCount(config(), 8), 8);
  assert.equal(workerCount(config('auto'), 0), 1);
  assert.equal(workerCount(config('3'), 16), 3);
  assert.equal(workerCount(config('1'), 16), 1);
});
