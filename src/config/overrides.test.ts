/** @module config/overrides.test — REGISTRY_* variables, serve flags, defaults without a file, freezing, printing. */

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONNECTION_LIMITS } from './defaults.js';
import { loadConfig } from './load.js';
import { describeConfig } from './describe.js';
import { configKit, PEM, problemsOf, REFERENCE } from './testkit.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const { write, load } = configKit(dir);

test('REGISTRY_* variables override keys the way distribution does', () => {
  const { config, warnings } = load(REFERENCE, {
    env: {
      REGISTRY_PROXY_REMOTEURL: 'https://other.example.com/',
      REGISTRY_HTTP_ADDR: '127.0.0.1:0',
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: 'rel/root',
      REGISTRY_STORAGE_MAXSIZE: '2GB',
      REGISTRY_STORAGE_DELETE_ENABLED: 'true',
      REGISTRY_LOG_LEVEL: 'debug',
      REGISTRY_LOG_FIELDS_SITE: 'edge-1',
      REGISTRY_PROXY_TAGTTL: '15m',
      REGISTRY_PROXY_HOSTS: '[harbor.xing.com]',
      REGISTRY_PROXY_PASSWORD: '',
      REGISTRY_HTTP_HEADERS_X_CONTENT_TYPE_OPTIONS: '[nosniff, other]',
      REGISTRY_REDIS_ADDR: 'localhost:6379',
      REGISTRY_PORT: 'tcp://10.0.0.1:5000',
      PROXY_REMOTEURL: 'https://ignored.example.com',
      registry_http_addr: ':1',
    },
  });
  assert.equal(config.upstreams[0]?.remoteurl, 'https://other.example.com');
  assert.equal(config.upstreams[0]?.password, undefined);
  assert.equal(config.upstreams[0]?.username, 'admin');
  assert.equal(config.upstreams[0]?.tagttlMs, 900_000);
  assert.deepEqual(config.upstreams[0]?.hosts, ['harbor.xing.com']);
  assert.deepEqual([config.http.host, config.http.port], ['127.0.0.1', 0]);
  assert.deepEqual(config.http.headers, { 'X-Content-Type-Options': ['nosniff', 'other'] });
  // A path from a variable is relative to the working directory, not to the file.
  assert.equal(config.storage.rootdirectory, join(dir, 'rel/root'));
  assert.equal(config.storage.maxsize, 2e9);
  assert.equal(config.storage.deleteEnabled, true);
  assert.equal(config.log.level, 'debug');
  assert.deepEqual(config.log.fields, { service: 'registry', site: 'edge-1' });
  assert.ok(warnings.includes('redis: accepted for compatibility with distribution, not used by berth (it coordinates replicas only with cluster: or hub:)'));
  assert.ok(warnings.includes('REGISTRY_PORT: environment variable ignored, it names no configuration key'));
});

test('REGISTRY_* variables: invalid values name the variable; list entries by index; no file needed', () => {
  const problems = problemsOf(() => load(REFERENCE, { env: { REGISTRY_PROXY_PUSHMODE: 'rw' } }));
  assert.deepEqual(problems, ['proxy.pushmode: invalid value "rw"; allowed: readonly, local, write-through, write-behind (set by REGISTRY_PROXY_PUSHMODE)']);
  const up = load('upstreams:\n  - { name: a, remoteurl: "https://a.io" }\n', {
    env: { REGISTRY_UPSTREAMS_0_PASSWORD: '&tricky #pw', REGISTRY_UPSTREAMS_1_NAME: 'b', REGISTRY_UPSTREAMS_1_REMOTEURL: 'https://b.io' },
  }).config.upstreams;
  assert.equal(up[0]?.password, '&tricky #pw');
  assert.deepEqual(
    up.map((u) => u.name),
    ['a', 'b'],
  );
  const fs = load(REFERENCE, { env: { REGISTRY_STORAGE: 'filesystem' } }).config;
  assert.equal(fs.storage.rootdirectory, '/var/lib/registry');
  assert.match(
    problemsOf(() => load(REFERENCE, { env: { REGISTRY_STORAGE: 's3' } }))[0] ?? '',
    /^storage\.s3: storage driver "s3" is not supported; .*\(set by REGISTRY_STORAGE\)$/,
  );
  const bare = loadConfig({ env: { REGISTRY_PROXY_REMOTEURL: 'https://mirror.example.com', REGISTRY_HTTP_ADDR: ':6000' }, cwd: dir }).config;
  assert.equal(bare.upstreams[0]?.remoteurl, 'https://mirror.example.com');
  assert.equal(bare.http.port, 6000);
});

test('without a file: embedded defaults', () => {
  const { config, warnings } = loadConfig({ env: {}, cwd: dir });
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.http, { host: '', port: 5000, headers: {}, listeners: [], limits: DEFAULT_CONNECTION_LIMITS, workers: 'auto', sendfile: true });
  assert.equal(config.storage.rootdirectory, join(dir, 'berth-data'));
  assert.deepEqual(
    config.upstreams.map((u) => [u.name, u.remoteurl, u.default, u.pushmode]),
    [['default', 'https://registry-1.docker.io', true, 'readonly']],
  );
  const user = loadConfig({ env: { REGISTRY_PROXY_USERNAME: 'bob' }, cwd: dir }).config.upstreams[0];
  assert.deepEqual([user?.remoteurl, user?.username], ['https://registry-1.docker.io', 'bob']);
});

test('flags override file and environment; their paths are relative to cwd', () => {
  write('flags/pw', 'flagpass\n');
  const file = write('flags/sub/config.yml', REFERENCE);
  const { config } = loadConfig({
    file,
    env: { REGISTRY_HTTP_ADDR: ':7000' },
    flags: { listen: '[::1]:5001', root: 'store', upstream: 'https://harbor.xing.com', username: 'robot', passwordFile: 'flags/pw' },
    cwd: dir,
  });
  assert.deepEqual([config.http.host, config.http.port], ['::1', 5001]);
  assert.equal(config.storage.rootdirectory, join(dir, 'store'));
  assert.deepEqual([config.upstreams[0]?.username, config.upstreams[0]?.password], ['robot', 'flagpass']);

  const none = loadConfig({ file, env: {}, flags: { upstream: 'none' }, cwd: dir }).config;
  assert.deepEqual(none.upstreams, []);
  assert.deepEqual(loadConfig({ env: {}, flags: { upstream: 'none' }, cwd: dir }).config.upstreams, []);

  const bad = problemsOf(() => loadConfig({ env: {}, flags: { listen: 'nowhere' }, cwd: dir }));
  assert.deepEqual(bad, [
    'http.addr: invalid address "nowhere"; allowed: [host]:port with port 0-65535, e.g. :5000, 0.0.0.0:5000, [::1]:5000, localhost:5000 (set by --listen)',
  ]);
});

test('--upstream naming another registry drops the file’s credentials for it', () => {
  const { config, warnings } = load(REFERENCE, { flags: { upstream: 'https://elsewhere.example.com' } });
  assert.equal(config.upstreams[0]?.remoteurl, 'https://elsewhere.example.com');
  assert.equal(config.upstreams[0]?.username, undefined);
  assert.equal(config.upstreams[0]?.password, undefined);
  assert.ok(warnings.includes('proxy.password: not used, --upstream names a different registry than proxy.remoteurl'));
  const problems = problemsOf(() => load('upstreams:\n  - { name: a, remoteurl: "https://a.io" }\n', { flags: { upstream: 'https://b.io' } }));
  assert.match(problems[0] ?? '', /^--upstream, --username, --password-file: the configuration lists upstreams/);
});

test('the config is deeply frozen', () => {
  const { config } = load(REFERENCE);
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.upstreams));
  assert.ok(Object.isFrozen(config.upstreams[0]?.hosts));
  assert.ok(Object.isFrozen(config.http.headers['X-Content-Type-Options']));
  assert.throws(() => {
    (config.http as { port: number }).port = 1;
  }, TypeError);
});

test('describeConfig redacts passwords and summarises CA bundles', () => {
  const files = { 'd/ca.crt': PEM };
  const { config } = load('proxy:\n  remoteurl: https://a.io\n  username: u\n  password: topsecret\n  ca: d/ca.crt\n', { files });
  const shown = describeConfig(config) as { proxy: { password: string; ca: string; username: string; tagttl: string } };
  assert.equal(shown.proxy.password, '<redacted>');
  assert.equal(shown.proxy.ca, `<${PEM.length} bytes PEM>`);
  assert.equal(shown.proxy.username, 'u');
  assert.equal(shown.proxy.tagttl, '1m');
  assert.ok(!JSON.stringify(shown).includes('topsecret'));
  assert.equal(config.upstreams[0]?.password, 'topsecret');
});

test('http.workers: auto (the default) or a count, from the file, REGISTRY_HTTP_WORKERS or --workers; config check prints it', () => {
  assert.equal(load('version: 0.1\n').config.http.workers, 'auto');
  assert.equal(load('version: 0.1\nhttp:\n  workers: 3\n').config.http.workers, 3);
  assert.equal(load('version: 0.1\nhttp:\n  workers: AUTO\n').config.http.workers, 'auto');
  assert.equal(load('version: 0.1\n', { env: { REGISTRY_HTTP_WORKERS: '2' } }).config.http.workers, 2);
  assert.equal(load('version: 0.1\nhttp:\n  workers: 3\n', { env: { REGISTRY_HTTP_WORKERS: '2' }, flags: { workers: '1' } }).config.http.workers, 1);
  assert.equal((describeConfig(load('version: 0.1\nhttp:\n  workers: 4\n').config).http as { workers: unknown }).workers, 4);
  assert.match(
    problemsOf(() => load('version: 0.1\nhttp:\n  workers: 0\n'))[0]!,
    /^http\.workers: invalid workers "0"; allowed: auto \(one per core\) or a whole number of at least 1/,
  );
  assert.match(problemsOf(() => load('version: 0.1\n', { flags: { workers: 'many' } }))[0]!, /^http\.workers: invalid workers "many".*\(set by --workers\)/);
});
