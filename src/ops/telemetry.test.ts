/** @module ops/telemetry.test — what each observer call does to the metrics, the stats and the history. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Telemetry } from './telemetry.js';
import { StatsHistory } from './history.js';

function make(now = () => 1_000_000) {
  const state = { fills: 2, up: true, queue: 0 };
  const t = new Telemetry({
    now,
    upstreamNames: ['harbor'],
    sources: {
      fillsInFlight: () => state.fills,
      store: () => ({ bytes: 5000, blobs: 7 }),
      maxsize: 10_000,
      upstreams: () => [{ name: 'harbor', up: state.up }],
      queueDepth: () => state.queue,
    },
  });
  return { t, state };
}

const value = (text: string, line: string) =>
  Number(
    text
      .split('\n')
      .find((l) => l.startsWith(`${line} `))
      ?.split(' ')[1],
  );

test('content bytes are split by source; only hit, joined and stale count as WAN bytes saved', async () => {
  const { t } = make();
  t.served('blob', 'miss', 100);
  t.served('blob', 'hit', 40);
  t.served('manifest', 'joined', 2);
  t.served('blob', 'stale', 3);
  t.served('blob', 'local', 5);
  t.served('tags', 'miss', 1000);
  t.upstreamBytes('harbor', 100);
  t.request({ route: 'blob', method: 'GET', status: 200, outcome: 'joined', upstream: 'harbor', bodyBytes: 0, seconds: 0.01 });
  t.request({ route: 'blob', method: 'GET', status: 200, outcome: 'miss', upstream: 'harbor', bodyBytes: 0, seconds: 0.01 });
  t.request({ route: 'tags', method: 'GET', status: 200, outcome: 'miss', upstream: 'harbor', bodyBytes: 0, seconds: 0.01 });
  t.evicted('size', 3, 900);
  t.tokenRefreshed('harbor');
  const stats = await t.stats();
  assert.deepEqual(stats['bytesServed'], { fromCache: 50, fromUpstream: 100 });
  assert.equal(stats['wanBytesSaved'], 45);
  assert.deepEqual(stats['requests'], { hit: 0, miss: 1, joined: 1, stale: 0, local: 0 });
  assert.equal(stats['hitRatio'], 0.5);
  assert.deepEqual(stats['upstreamBytes'], { harbor: 100 });
  assert.deepEqual(stats['store'], { bytes: 5000, maxsize: 10_000, blobs: 7 });
  assert.equal(stats['fillsInFlight'], 2);
  const { body, contentType } = await t.metrics();
  assert.match(contentType, /^text\/plain/);
  assert.equal(value(body, 'berth_served_bytes_total{source="cache"}'), 50);
  assert.equal(value(body, 'berth_served_bytes_total{source="upstream"}'), 100);
  assert.equal(value(body, 'berth_wan_bytes_saved_total'), 45);
  assert.equal(value(body, 'berth_upstream_bytes_total{upstream="harbor"}'), 100);
  assert.equal(value(body, 'berth_joined_requests_total'), 1);
  assert.equal(value(body, 'berth_http_requests_total{route="tags",method="GET",status="200",outcome="miss"}'), 1);
  assert.equal(value(body, 'berth_evictions_total{reason="size"}'), 3);
  assert.equal(value(body, 'berth_evicted_bytes_total{reason="size"}'), 900);
  assert.equal(value(body, 'berth_evictions_total{reason="ttl"}'), 0);
  assert.equal(value(body, 'berth_upstream_token_refreshes_total{upstream="harbor"}'), 1);
  assert.equal(value(body, 'berth_fills_in_flight'), 2);
  assert.equal(value(body, 'berth_store_bytes'), 5000);
  assert.equal(value(body, 'berth_store_blobs'), 7);
  assert.equal(value(body, 'berth_store_limit_bytes'), 10_000);
  assert.equal(value(body, 'berth_upstream_up{upstream="harbor"}'), 1);
  assert.equal(value(body, 'berth_queue_depth'), 0);
  assert.match(body, /^process_resident_memory_bytes /m);
});

test('gauges are read at scrape time, and two instances do not share a registry', async () => {
  const a = make();
  const b = make();
  a.state.up = false;
  a.state.queue = 4;
  a.t.served('blob', 'hit', 10);
  const text = (await a.t.metrics()).body;
  assert.equal(value(text, 'berth_upstream_up{upstream="harbor"}'), 0);
  assert.equal(value(text, 'berth_queue_depth'), 4);
  assert.equal(value((await b.t.metrics()).body, 'berth_served_bytes_total{source="cache"}'), 0);
});

test('history keeps per-interval deltas and drops the oldest beyond its capacity', () => {
  const h = new StatsHistory(10_000, 3);
  const totals = (hit: number, bytes: number) => ({ hit, miss: 1, joined: 0, stale: 0, bytesFromCache: bytes, bytesFromUpstream: 0 });
  h.sample(10_000, totals(2, 100));
  h.sample(20_000, totals(5, 150));
  h.sample(30_000, totals(5, 150));
  h.sample(40_000, totals(9, 400));
  const { intervalSeconds, points } = h.toJSON();
  assert.equal(intervalSeconds, 10);
  assert.deepEqual(
    points.map((p) => [p.t, p.hit, p.miss, p.bytesFromCache]),
    [
      [20_000, 3, 0, 50],
      [30_000, 0, 0, 0],
      [40_000, 4, 0, 250],
    ],
  );
});
