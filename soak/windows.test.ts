/** @module soak/windows.test — the rule that decides which interrupted pulls a planned disruption excuses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { excuse, GRACE_MS, Windows } from './windows.js';

function at(): { windows: Windows; set: (t: number) => void } {
  let t = 0;
  return {
    windows: new Windows(() => t),
    set: (x) => {
      t = x;
    },
  };
}

test('a restart excuses connection failures of requests that overlapped it, with a short grace, and nothing else', () => {
  const { windows, set } = at();
  set(1_000);
  windows.begin('restart', 'SIGTERM');
  set(3_000);
  windows.end('restart');
  assert.equal(excuse(windows, 'refused', 2_000, 2_000, false), 'berth-restarting');
  assert.equal(excuse(windows, 'cut', 500, 1_500, false), 'berth-restarting');
  assert.equal(excuse(windows, 'cut', 3_000 + GRACE_MS.restart - 1, 3_000 + GRACE_MS.restart, false), 'berth-restarting', 'a stale pooled connection');
  assert.equal(excuse(windows, 'cut', 3_000 + GRACE_MS.restart + 1, 9_000, false), undefined, 'after the grace a cut is a failure');
  assert.equal(excuse(windows, 'status-404', 2_000, 2_000, false), undefined, 'a 404 is never excused');
  assert.equal(excuse(windows, 'digest', 2_000, 2_000, false), undefined);
  assert.equal(excuse(windows, 'cut-body', 500, 1_500, false), undefined, 'SIGTERM finishes responses in flight');
  set(20_000);
  windows.begin('restart', 'SIGKILL');
  assert.equal(excuse(windows, 'cut-body', 19_000, 20_500, false), 'berth-restarting');
});

test('an outage excuses unavailable uncached content, never content berth held when it called the upstream down', () => {
  const { windows, set } = at();
  set(1_000);
  windows.begin('outage');
  assert.ok(windows.isOpen('outage'));
  assert.equal(excuse(windows, 'status-503', 2_000, 2_000, false), 'upstream-down');
  assert.equal(excuse(windows, 'cut-body', 2_000, 2_000, false), 'upstream-down', 'a fill the outage broke');
  assert.equal(excuse(windows, 'status-503', 2_000, 2_000, true), undefined, 'cached content must be served');
  assert.equal(excuse(windows, 'status-404', 2_000, 2_000, false), undefined);
  assert.equal(excuse(windows, 'refused', 2_000, 2_000, false), undefined, 'berth itself stays up');
  set(5_000);
  windows.end('outage');
  assert.equal(excuse(windows, 'status-503', 5_000 + GRACE_MS.outage + 1, 5_000 + GRACE_MS.outage + 1, false), undefined);
});
