/** @module e2e/deploy-cluster.test — the Helm chart's large-site values: three replicas, peers' headless Service, Redis, the cluster secret, and a config berth accepts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { BERTH_BIN } from '../fixtures/berth.js';
import { renderChart } from '../fixtures/helm.js';
import { loadConfig } from '../../src/config/load.js';

const CHART = path.join(path.resolve(path.dirname(BERTH_BIN), '..'), 'deploy/helm/berth');
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- manifests are untyped YAML

test('helm: values-large-site.yaml renders 3 replicas, a headless peers Service, Redis and the cluster env berth reads', async () => {
  const large = parse(readFileSync(path.join(CHART, 'values-large-site.yaml'), 'utf8')) as Obj;
  large['cluster']['secret'] = 'a-cluster-secret-of-some-length';
  const rendered = await renderChart(CHART, { release: 'berth', namespace: 'edge', values: large });
  const docs = [...rendered.files]
    .filter(([f]) => f.endsWith('.yaml'))
    .flatMap(([, t]) => parseAllDocuments(t).map((d) => d.toJS() as Obj | null))
    .filter((d): d is Obj => d !== null);
  const byName = (kind: string, name: string) => docs.find((d) => d['kind'] === kind && d['metadata']['name'] === name);
  const sts = byName('StatefulSet', 'berth')!;
  assert.equal(sts['spec']['replicas'], 3);
  assert.equal(sts['spec']['serviceName'], 'berth-peers');
  const peers = byName('Service', 'berth-peers')!;
  assert.equal(peers['spec']['clusterIP'], 'None');
  assert.ok(byName('Deployment', 'berth-redis') && byName('Service', 'berth-redis'), 'the chart runs Redis');
  assert.equal(byName('Secret', 'berth-cluster')!['stringData']['secret'], 'a-cluster-secret-of-some-length');
  const env = Object.fromEntries((sts['spec']['template']['spec']['containers'][0]['env'] as Obj[]).map((e) => [e['name'], e['value'] ?? e['valueFrom']]));
  assert.equal(env['REGISTRY_CLUSTER_ADVERTISE'], 'http://$(POD_NAME).berth-peers.edge.svc:5000');
  assert.equal(env['REGISTRY_REDIS_ADDR'], 'berth-redis:6379');
  assert.deepEqual(env['REGISTRY_CLUSTER_SECRET'], { secretKeyRef: { name: 'berth-cluster', key: 'secret' } });
  // The env as Kubernetes would expand it, over the chart's config.yml: berth accepts it.
  const cm = docs.find((d) => d['kind'] === 'ConfigMap')!;
  const dir = path.join(path.dirname(BERTH_BIN), '..');
  const file = path.join(dir, 'dist', `cluster-config-${process.pid}.yml`);
  writeFileSync(file, cm['data']['config.yml'] as string);
  try {
    const { config } = loadConfig({
      file,
      cwd: dir,
      env: {
        REGISTRY_CLUSTER_ADVERTISE: 'http://berth-0.berth-peers.edge.svc:5000',
        REGISTRY_CLUSTER_NAME: 'site',
        REGISTRY_CLUSTER_SECRET: 'a-cluster-secret-of-some-length',
        REGISTRY_REDIS_ADDR: 'berth-redis:6379',
      },
    });
    assert.equal(config.cluster?.advertise, 'http://berth-0.berth-peers.edge.svc:5000');
    assert.deepEqual(config.cluster?.redis.addrs, [{ host: 'berth-redis', port: 6379 }]);
  } finally {
    rmSync(file, { force: true });
  }
});

test('kubernetes: the large-site overlay lists its files and sets what the chart sets', () => {
  const dir = path.join(path.dirname(CHART), '..', 'kubernetes', 'large-site');
  const k = parse(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Obj;
  const files = [...(k['resources'] as string[]).filter((r) => r !== '../'), ...(k['patches'] as Obj[]).map((p) => p['path'] as string)];
  const docs = files.flatMap((f) => parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => d.toJS() as Obj));
  const sts = docs.find((d) => d['kind'] === 'StatefulSet')!;
  assert.equal(sts['spec']['replicas'], 3);
  assert.equal(sts['spec']['serviceName'], 'berth-peers');
  const env = (sts['spec']['template']['spec']['containers'][0]['env'] as Obj[]).map((e) => e['name']);
  assert.deepEqual(env, ['POD_NAME', 'REGISTRY_CLUSTER_ADVERTISE', 'REGISTRY_CLUSTER_NAME', 'REGISTRY_CLUSTER_SECRET', 'REGISTRY_REDIS_ADDR']);
  assert.equal(docs.find((d) => d['kind'] === 'Service' && d['metadata']['name'] === 'berth-peers')!['spec']['clusterIP'], 'None');
  assert.ok(docs.some((d) => d['kind'] === 'Deployment' && d['metadata']['name'] === 'berth-redis'));
  assert.ok(docs.some((d) => d['kind'] === 'Secret' && d['metadata']['name'] === 'berth-cluster'));
});
