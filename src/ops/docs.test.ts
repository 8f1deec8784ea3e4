/** @module ops/docs.test — every metric is documented and charted only if it exists; every admin route is documented. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Telemetry } from './telemetry.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const read = (p: string) => readFileSync(`${root}${p}`, 'utf8');

async function exposed(): Promise<Set<string>> {
  const t = new Telemetry({
    now: Date.now,
    upstreamNames: ['u'],
    sources: { fillsInFlight: () => 0, store: () => ({ bytes: 0, blobs: 0 }), maxsize: 0, upstreams: () => [{ name: 'u', up: true }], queueDepth: () => 0 },
  });
  const names = (await t.metrics()).body
    .split('\n')
    .filter((l) => l.startsWith('# TYPE berth_'))
    .map((l) => l.split(' ')[2]!);
  return new Set(names);
}

test('docs/operations.md documents every berth_ metric, and documents no metric that does not exist', async () => {
  const names = await exposed();
  const readme = read('docs/operations.md');
  const section = readme.slice(readme.indexOf('## Metrics'), readme.indexOf('\n## ', readme.indexOf('## Metrics') + 1));
  const documented = new Set([...section.matchAll(/^\| `(berth_[a-z_]+)`/gm)].map((m) => m[1]!));
  assert.deepEqual([...names].sort(), [...documented].sort());
});

test('the Grafana dashboard parses and charts only metrics berth exposes', async () => {
  const names = await exposed();
  const dashboard = JSON.parse(read('deploy/grafana/berth-dashboard.json')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
  assert.ok(dashboard.panels.length >= 8);
  for (const p of dashboard.panels) {
    for (const t of p.targets) {
      for (const m of t.expr.matchAll(/berth_[a-z_]+/g)) {
        assert.ok(names.has(m[0].replace(/_bucket$/, '')), `panel "${p.title}" uses ${m[0]}`);
      }
    }
  }
});

test('docs/admin-api.md covers every endpoint', () => {
  const doc = read('docs/admin-api.md');
  const endpoints = [
    'GET /healthz',
    'GET /readyz',
    'GET /metrics',
    'GET /api/v1/stats',
    'GET /api/v1/stats/history',
    'GET /api/v1/upstreams',
    'GET /api/v1/images',
    'POST /api/v1/pin',
    'POST /api/v1/unpin',
    'POST /api/v1/evict',
    'POST /api/v1/warm',
    'GET /api/v1/warm/<id>',
    'GET /api/v1/queue',
    'POST /api/v1/bundles/missing',
    'PUT /api/v1/bundles/blobs/<digest>',
    'POST /api/v1/bundles',
    'GET /api/v1/bundles',
    'GET /api/v1/sites',
    'GET /api/v1/sites/summary',
    'GET /api/v1/fleet/jobs/summary',
    'POST /api/v1/events',
    'GET /api/v1/fleet/jobs',
    'POST /api/v1/fleet/poll',
    'GET /api/v1/sites/<name>/bundle',
    'PUT /api/v1/fleet/held/<name>',
    'GET /api/v1/sites/<name>/held',
  ];
  for (const e of endpoints) assert.ok(doc.includes(e), e);
});
