/** @module config/describe.test — the printed configuration follows the schema: only its keys, its units, its secrets redacted. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeConfig } from './describe.js';
import { configKit, PEM, REFERENCE } from './testkit.js';
import { validateDocument } from './validate.js';
import type { Tree } from './yaml.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-config-describe-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const { load } = configKit(dir);
const KEY = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n';

const EVERYTHING = `version: 0.1
log: { level: debug, fields: { service: registry }, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: ./d }, maxsize: 10GiB, lowwatermark: 0.7, reserve: 16MiB, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false, age: 2h, interval: 5m }, keptranges: { age: 12h } } }
http: { addr: "127.0.0.1:6000", workers: 2, sendfile: false, headerstimeout: 10s, idletimeout: 1m, maxconnections: 100, maxconnectionsperclient: 10, headers: { X-A: [b] }, listeners: [ { addr: ":7000" } ] }
upstreams:
  - { name: a, remoteurl: https://a.example, hosts: [a.example], prefix: a, pushmode: write-through, ttl: 24h, tagttl: 5m, prefetch: true, ratelimit: 4MiB/s, backgroundwindow: "01:00-05:00", passthroughauth: true, passthroughttl: 2m, passthroughoutage: deny, tokenrealms: [auth.a.example], resolve: 10.0.0.1, ca: c.crt, certificate: c.crt, key: c.key }
  - { name: b, remoteurl: https://b.example, username: u, password: upstream-secret-1, default: true }
auth: { rules: [ { users: [anonymous], actions: [pull] } ] }
admin: { username: root, password: admin-secret-2, trustloopback: false }
warm: { interval: 30m, images: [alpine:3], platforms: [linux/arm64] }
site: { name: s1, hub: https://hub.example, token: site-secret-3, interval: 1m }
redis: { addr: "127.0.0.1:6379", db: 2, password: redis-secret-4, dialtimeout: 2s }
cluster: { advertise: http://10.0.0.2:5000, secret: cluster-secret-5-of-length }
`;

test('the printed configuration is a valid config.yml document: every key it prints is declared in the schema', () => {
  for (const text of [REFERENCE, EVERYTHING, 'hub: { token: hub-secret-6 }\nadmin: { open: true }\n', '']) {
    const printed = describeConfig(load(text, { files: { 'c.crt': PEM, 'c.key': KEY } }).config);
    const checked = validateDocument(structuredClone(printed) as Tree);
    assert.deepEqual(checked.problems, [], JSON.stringify(printed));
  }
});

test('values are written in the units of their keys and every secret key is redacted', () => {
  const printed = describeConfig(load(EVERYTHING, { files: { 'c.crt': PEM, 'c.key': KEY } }).config);
  const text = JSON.stringify(printed);
  for (const secret of ['upstream-secret-1', 'admin-secret-2', 'site-secret-3', 'redis-secret-4', 'cluster-secret-5', 'PRIVATE KEY']) {
    assert.ok(!text.includes(secret), `${secret} printed: ${text}`);
  }
  const shown = printed as {
    storage: { maxsize: string; reserve: string };
    upstreams: Array<{ ratelimit?: string; ttl: string }>;
    redis: { dialtimeout: string };
  };
  assert.equal(shown.storage.maxsize, '10GiB');
  assert.equal(shown.storage.reserve, '16MiB');
  assert.equal(shown.upstreams[0]?.ratelimit, '4MiB/s');
  assert.equal(shown.upstreams[0]?.ttl, '24h');
  assert.equal(shown.upstreams[1]?.ttl, '0s');
  assert.equal(shown.redis.dialtimeout, '2s');
});
