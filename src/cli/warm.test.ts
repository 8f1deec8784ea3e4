/** @module cli/warm.test — byte formatting, rates and the closing summary of `berth warm`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatSeconds, RateMeter } from './progress.js';
import { summary } from './warm.js';
import type { WarmImage, WarmJob } from '../cache/warm-up.js';

test('bytes and rates', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(5 * 1024 ** 3), '5.0 GiB');
  assert.deepEqual([formatSeconds(4.2), formatSeconds(75), formatSeconds(7300)], ['5s', '1m15s', '2h01m']);
  const m = new RateMeter(5_000);
  assert.equal(m.rate(), 0);
  m.add(0, 0);
  m.add(1_000, 1_000_000);
  assert.equal(m.rate(), 1_000_000);
  m.add(10_000, 1_000_000);
  assert.equal(m.rate(), 0, 'old samples age out');
});

test('the summary counts fetched, already cached and failed images and names each failure', () => {
  const img = (ref: string, state: WarmImage['state'], bytesFetched = 0, error: string | null = null): WarmImage => ({
    ref,
    state,
    bytesTotal: 10,
    bytesDone: 10,
    bytesFetched,
    blobsTotal: 1,
    blobsDone: 1,
    error,
    digest: null,
    platforms: [],
  });
  const job: WarmJob = {
    id: 'j',
    state: 'failed',
    createdAt: 0,
    finishedAt: 1,
    source: 'api',
    pin: false,
    platforms: ['linux/amd64'],
    images: [img('a:v1', 'done', 2048), img('b:v1', 'cached'), img('c:v1', 'failed', 0, 'manifest v1 is not known')],
  };
  assert.deepEqual(summary(job), ['3 image(s): 1 fetched (2.0 KiB), 1 already cached, 1 failed', '  failed: c:v1: manifest v1 is not known']);
});
