/** @module assembly/group-telemetry.test — the whole group's figures: counters summed, the shared store once, history intervals added up. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AggregatorRegistry } from 'prom-client';
import { Telemetry } from '../ops/telemetry.js';
import { mergeHistory, mergeStats } from './group-telemetry.js';

test('metrics of two workers: request counters add up, the store gauges are reported once', async () => {
  const workers = [0, 1].map(() => new Telemetry({ now: () => 0, upstreamNames: ['default'] }));
  for (const [i, t] of workers.entries()) {
    t.attach({
      fillsInFlight: () => i + 1,
      store: () => ({ bytes: 1000, blobs: 3 }),
      maxsize: 5000,
      upstreams: () => [{ name: 'default', up: i === 0 }],
      queueDepth: () => 2,
    });
    for (let n = 0; n <= i; n++) t.request({ route: 'blob', method: 'GET', status: 200, outcome: 'hit', upstream: 'default', bodyBytes: 1, seconds: 0.01 });
  }
  const merged = AggregatorRegistry.aggregate(await Promise.all(workers.map((t) => t.registry.getMetricsAsJSON())));
  const text = await merged.metrics();
  assert.match(text, /berth_http_requests_total\{route="blob",method="GET",status="200",outcome="hit"\} 3/);
  assert.match(text, /berth_fills_in_flight 3/);
  assert.match(text, /berth_store_bytes 1000\n/);
  assert.match(text, /berth_store_limit_bytes 5000\n/);
  assert.match(text, /berth_queue_depth 2\n/);
  assert.match(text, /berth_upstream_up\{upstream="default"\} 0/, 'down in one worker is down');
});

test('stats: counters summed, store and queue once, hit ratio from the sums, uptime the longest', () => {
  const s = mergeStats([
    {
      uptimeSeconds: 10,
      requests: { hit: 3, miss: 1, joined: 0, stale: 0, local: 0 },
      hitRatio: 0.75,
      fillsInFlight: 1,
      queueDepth: 4,
      store: { bytes: 9, blobs: 1 },
    },
    {
      uptimeSeconds: 12,
      requests: { hit: 0, miss: 1, joined: 1, stale: 0, local: 2 },
      hitRatio: 0.5,
      fillsInFlight: 0,
      queueDepth: 4,
      store: { bytes: 9, blobs: 1 },
    },
  ]);
  assert.deepEqual(s['requests'], { hit: 3, miss: 2, joined: 1, stale: 0, local: 2 });
  assert.equal(s['hitRatio'], 4 / 6);
  assert.equal(s['uptimeSeconds'], 12);
  assert.equal(s['fillsInFlight'], 1);
  assert.equal(s['queueDepth'], 4);
  assert.deepEqual(s['store'], { bytes: 9, blobs: 1 });
});

test('history: points of the same interval add up, in time order', () => {
  const p = (t: number, hit: number) => ({ t, hit, miss: 0, joined: 0, stale: 0, bytesFromCache: hit * 10, bytesFromUpstream: 0 });
  const h = mergeHistory([
    { intervalSeconds: 10, points: [p(10_000, 1), p(20_000, 2)] },
    { intervalSeconds: 10, points: [p(11_000, 5)] },
  ]);
  assert.deepEqual(
    h.points.map((x) => [x.t, x.hit, x.bytesFromCache]),
    [
      [10_000, 6, 60],
      [20_000, 2, 20],
    ],
  );
});
