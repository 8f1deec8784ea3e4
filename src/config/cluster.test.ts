/** @module config/cluster.test — the redis and cluster sections: distribution's keys, berth's cluster keys, every problem named by its key path. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeConfig } from './describe.js';
import { configKit, problemsOf } from './testkit.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-config-cluster-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const { load } = configKit(dir);
const base = 'proxy: { remoteurl: https://harbor.xing.com }\n';
const SECRET = 'a-shared-secret-of-some-length';

test('redis: without cluster: stays accepted, warned and unused (a distribution config still starts one cache)', () => {
  const { config, warnings } = load(`${base}redis: { addr: 10.0.0.9:6379, password: x, db: 0, pool: { maxidle: 16 } }\n`);
  assert.equal(config.cluster, undefined);
  assert.ok(
    warnings.some((w) => w.startsWith('redis: accepted for compatibility')),
    warnings.join('\n'),
  );
});

test('cluster: with redis.addr (2.x) or addrs with mastername (Sentinel); secret from a file; redacted when printed', () => {
  const { config } = load(
    `${base}redis: { addr: "10.0.0.9:6379", password: pw, db: 2, dialtimeout: 2s }\ncluster: { advertise: "http://10.0.0.5:5000/", secretfile: s.txt, name: site-a }\n`,
    { files: { 's.txt': `${SECRET}\n` } },
  );
  assert.deepEqual(config.cluster, {
    advertise: 'http://10.0.0.5:5000',
    secret: SECRET,
    name: 'site-a',
    redis: { addrs: [{ host: '10.0.0.9', port: 6379 }], password: 'pw', db: 2, connectMs: 2_000, commandMs: 1_000 },
  });
  const printed = describeConfig(config) as { cluster: { secret: string }; redis: { password: string; addr: string } };
  assert.equal(printed.cluster.secret, '<redacted>');
  assert.equal(printed.redis.password, '<redacted>');
  assert.equal(printed.redis.addr, '10.0.0.9:6379');
  const sentinel = load(`${base}redis: { addrs: [a:26379, "b:26379"], mastername: mymaster }\ncluster: { advertise: "http://a:5000", secret: ${SECRET} }\n`)
    .config.cluster;
  assert.deepEqual(sentinel?.redis.addrs, [
    { host: 'a', port: 26379 },
    { host: 'b', port: 26379 },
  ]);
  assert.equal(sentinel?.name, 'berth');
  const env = load(base, {
    env: { REGISTRY_REDIS_ADDR: '127.0.0.1:7000', REGISTRY_CLUSTER_ADVERTISE: 'http://127.0.0.1:5001', REGISTRY_CLUSTER_SECRET: SECRET },
  }).config.cluster;
  assert.deepEqual(env?.redis.addrs, [{ host: '127.0.0.1', port: 7000 }]);
});

test('every problem names its key path', () => {
  assert.deepEqual(
    problemsOf(() => load(`${base}cluster: { advertise: "http://a:5000", secret: ${SECRET} }\n`)),
    ['cluster: needs a redis: section (redis.addr or redis.addrs) to coordinate the replicas'],
  );
  assert.deepEqual(
    problemsOf(() => load(`${base}redis: { addr: nohost, db: x }\ncluster: { advertise: "http://a:5000", secret: short }\n`)),
    [
      'redis.addr: invalid address "nohost"; allowed: host:port, e.g. 10.0.0.9:6379',
      'redis.db: invalid value "x"; allowed: a database number, 0 or more',
      'cluster.secret: too short; allowed: a shared secret of 16 characters or more',
    ],
  );
  const unknown = problemsOf(() => load(`${base}redis: { addr: "a:1" }\ncluster: { advertise: "http://a:5000", secret: ${SECRET}, peers: 3 }\n`));
  assert.match(unknown[0]!, /^cluster\.peers: unknown key; allowed here: advertise, secret, secretfile, name$/);
  assert.match(problemsOf(() => load(`${base}redis: { addr: "a:1" }\ncluster: { advertise: "ftp://a", secret: ${SECRET} }\n`))[0]!, /^cluster\.advertise: /);
  assert.match(problemsOf(() => load(`${base}redis: { addr: "a:1" }\ncluster: { advertise: "http://a:1" }\n`))[0]!, /^cluster\.secret: required/);
});
