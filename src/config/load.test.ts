/** @module config/load.test — loading config files: distribution compatibility, extensions, validation. */

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_CONNECTION_LIMITS,
  DEFAULT_KEPT_RANGES_AGE_MS,
  DEFAULT_UPLOAD_AGE_MS,
  defaultMaxConnections,
  DEFAULT_UPLOAD_PURGE_INTERVAL_MS,
} from './defaults.js';
import { loadConfig } from './load.js';
import { configKit, PEM, problemsOf, REFERENCE } from './testkit.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const { write, load } = configKit(dir);
const DEFAULT_PURGING = { enabled: true, ageMs: DEFAULT_UPLOAD_AGE_MS, intervalMs: DEFAULT_UPLOAD_PURGE_INTERVAL_MS };

test('the reference distribution config loads unchanged, one warning per unused key', () => {
  const { config, warnings } = load(REFERENCE);
  assert.deepEqual(warnings, [
    'storage.cache: accepted for compatibility with distribution, not used by berth',
    'health: accepted for compatibility with distribution, not used by berth',
  ]);
  assert.deepEqual(config.log, { level: 'info', fields: { service: 'registry' }, accesslog: true });
  assert.deepEqual(config.storage, {
    rootdirectory: '/var/lib/registry',
    maxsize: 0,
    lowwatermark: 0.8,
    reserve: 8 * 2 ** 20,
    deleteEnabled: false,
    uploadpurging: DEFAULT_PURGING,
    keptranges: { ageMs: DEFAULT_KEPT_RANGES_AGE_MS },
  });
  assert.deepEqual(config.http, {
    host: '',
    port: 5000,
    headers: { 'X-Content-Type-Options': ['nosniff'] },
    listeners: [],
    limits: DEFAULT_CONNECTION_LIMITS,
    workers: 'auto',
    sendfile: true,
  });
  assert.deepEqual(config.upstreams, [
    {
      name: 'default',
      remoteurl: 'https://harbor.xing.com',
      username: 'admin',
      password: 'Harbor12345',
      hosts: [],
      default: true,
      insecure: false,
      tokenrealms: [],
      tagttlMs: 60_000,
      prefetch: false,
      rangefetch: true,
      rangequietMs: 1000,
      ttlMs: 0,
      pushmode: 'readonly',
    },
  ]);
  assert.deepEqual(config.upstreamTimeouts, { connectMs: 5000, firstByteMs: 30_000, idleMs: 30_000 });
  assert.equal(config.auth, undefined);
});

/** berth's extensions (docs/design.md §2, docs/config-guide.md), with their /etc/berth files as files beside the config. */
const EXT_COMMON = `storage:
  filesystem: { rootdirectory: data }
  maxsize: 50GiB            # evict least-recently-used content above this
  lowwatermark: 0.8         # evict down to maxsize * lowwatermark
http:
  tls: { certificate: tls.crt, key: tls.key }   # distribution's keys
auth:
  htpasswd: { realm: berth, path: htpasswd }   # distribution's keys (bcrypt)
`;
const EXT_PROXY = `proxy:                      # distribution's single upstream; same as one entry of \`upstreams\`
  remoteurl: https://harbor.xing.com
  ttl: 168h                 # distribution's meaning: drop content not pulled for this long
  tagttl: 60s               # berth: serve a tag from cache this long before asking upstream again
`;
const EXT_UPSTREAMS = `upstreams:                  # several central registries in one cache
  - name: harbor
    remoteurl: https://harbor.xing.com
    username: admin
    passwordfile: secrets/harbor.pass   # or password:
    hosts: [harbor.xing.com] # requests naming this registry (?ns=, Host header) go here
    prefix: harbor           # /v2/harbor/<repo>/... also goes here
    default: true            # requests naming no registry go here
    ca: harbor-ca.crt
    insecure: false          # skip TLS verification for this upstream
    tagttl: 60s
    pushmode: readonly       # readonly | local | write-through | write-behind
  - name: dockerhub
    remoteurl: https://registry-1.docker.io
    hosts: [docker.io, registry-1.docker.io]
    prefix: docker.io
`;

test('the extensions load: upstreams form, files read relative to the config', () => {
  const sub = join(dir, 'ext');
  write('ext/secrets/harbor.pass', 'S3cret!\n');
  write('ext/harbor-ca.crt', PEM);
  const file = write('ext/config.yml', EXT_COMMON + EXT_UPSTREAMS);
  const { config, warnings } = loadConfig({ file, env: {}, cwd: dir });
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.storage, {
    rootdirectory: join(sub, 'data'),
    maxsize: 50 * 2 ** 30,
    lowwatermark: 0.8,
    reserve: 8 * 2 ** 20,
    deleteEnabled: false,
    uploadpurging: DEFAULT_PURGING,
    keptranges: { ageMs: DEFAULT_KEPT_RANGES_AGE_MS },
  });
  assert.deepEqual(config.http.tls, { certificate: join(sub, 'tls.crt'), key: join(sub, 'tls.key') });
  assert.deepEqual(config.auth, { htpasswd: { realm: 'berth', path: join(sub, 'htpasswd') } });
  const [harbor, hub] = config.upstreams;
  assert.deepEqual(harbor, {
    name: 'harbor',
    remoteurl: 'https://harbor.xing.com',
    username: 'admin',
    password: 'S3cret!',
    hosts: ['harbor.xing.com'],
    prefix: 'harbor',
    default: true,
    ca: PEM,
    insecure: false,
    tokenrealms: [],
    tagttlMs: 60_000,
    prefetch: false,
    rangefetch: true,
    rangequietMs: 1000,
    ttlMs: 0,
    pushmode: 'readonly',
  });
  assert.equal(hub?.default, false);
  assert.deepEqual(hub?.hosts, ['docker.io', 'registry-1.docker.io']);
  assert.equal(hub?.prefix, 'docker.io');
});

test('the extensions load: proxy form', () => {
  const { config } = load(EXT_COMMON + EXT_PROXY);
  assert.equal(config.upstreams.length, 1);
  assert.equal(config.upstreams[0]?.ttlMs, 168 * 3_600_000);
  assert.equal(config.upstreams[0]?.tagttlMs, 60_000);
  assert.equal(config.upstreams[0]?.default, true);
});

test('proxy and upstreams together are an error', () => {
  write('ext2/secrets/harbor.pass', 'x\n');
  write('ext2/harbor-ca.crt', PEM);
  const file = write('ext2/config.yml', EXT_COMMON + EXT_PROXY + EXT_UPSTREAMS);
  assert.deepEqual(
    problemsOf(() => loadConfig({ file, env: {}, cwd: dir })),
    ['upstreams: proxy and upstreams are both set; allowed: one of them (proxy is the single-upstream form)'],
  );
});

test('unknown keys are errors naming the full path', () => {
  const problems = problemsOf(() =>
    load('proxy:\n  remoteur: https://x.io\n  remoteurl: https://x.io\nfoo: 1\nupstreamz: []\nstorage:\n  filesystem:\n    root: /x\n'),
  );
  assert.equal(problems.length, 4);
  assert.match(problems.find((p) => p.startsWith('proxy.remoteur:')) ?? '', /^proxy\.remoteur: unknown key; allowed here: remoteurl, /);
  assert.ok(problems.some((p) => p.startsWith('foo: unknown key')));
  assert.ok(problems.some((p) => p.startsWith('upstreamz: unknown key')));
  assert.ok(problems.some((p) => p.startsWith('storage.filesystem.root: unknown key; allowed here: rootdirectory, maxthreads')));
  const nested = problemsOf(() => load('upstreams:\n  - name: a\n    remoteurl: https://a.io\n    tagtll: 5s\n'));
  assert.match(nested[0] ?? '', /^upstreams\[0\]\.tagtll: unknown key/);
});

test('invalid values name the key path, the value and what is allowed', () => {
  const cases: [string, RegExp][] = [
    ['storage:\n  maxsize: 10XB\n', /^storage\.maxsize: invalid size "10XB"; allowed: .*GiB/],
    ['proxy:\n  remoteurl: https://a.io\n  tagttl: 5 minutes\n', /^proxy\.tagttl: invalid duration "5 minutes"; allowed: .*90s/],
    ['proxy:\n  remoteurl: https://a.io\n  ttl: 60\n', /^proxy\.ttl: invalid duration "60": missing unit; allowed: /],
    ['proxy:\n  remoteurl: https://a.io\n  pushmode: rw\n', /^proxy\.pushmode: invalid value "rw"; allowed: readonly, local, write-through, write-behind$/],
    ['proxy:\n  remoteurl: ftp://a.io\n', /^proxy\.remoteurl: invalid URL "ftp:\/\/a\.io"; allowed: an http:\/\/ or https:\/\/ URL/],
    ['proxy:\n  remoteurl: harbor.xing.com\n', /^proxy\.remoteurl: invalid URL "harbor\.xing\.com"; allowed: /],
    ['storage:\n  lowwatermark: 1.5\n', /^storage\.lowwatermark: invalid value "1\.5"; allowed: a number greater than 0 and less than 1/],
    ['http:\n  addr: localhost\n', /^http\.addr: invalid address "localhost"; allowed: \[host\]:port/],
    ['storage:\n  delete:\n    enabled: maybe\n', /^storage\.delete\.enabled: invalid boolean "maybe"; allowed: true or false$/],
    ['log:\n  level: loud\n', /^log\.level: invalid value "loud"; allowed: trace, debug, info/],
    ['version: 0.2\n', /^version: invalid version "0\.2"; allowed: 0\.1$/],
    ['storage: s3\n', /^storage: invalid value: "s3"; allowed: a mapping with keys filesystem, maxsize/],
    ['upstreams:\n  - name: Harbor\n    remoteurl: https://a.io\n', /^upstreams\[0\]\.name: invalid name "Harbor"; allowed: lower-case/],
    ['upstreams:\n  - name: a\n    remoteurl: https://a.io\n    hosts: [bad host]\n', /^upstreams\[0\]\.hosts\[0\]: invalid host "bad host"; allowed: /],
    ['upstreams:\n  - name: a\n', /^upstreams\[0\]\.remoteurl: required key is missing$/],
    ['storage:\n  s3:\n    bucket: b\n', /^storage\.s3: storage driver "s3" is not supported; allowed: filesystem/],
    ['http:\n  headers:\n    X-A: {b: c}\n', /^http\.headers\.X-A: invalid value: a mapping; allowed: /],
  ];
  for (const [yaml, expected] of cases) {
    const problems = problemsOf(() => load(yaml));
    assert.equal(problems.length, 1, `${yaml}: ${problems.join(' | ')}`);
    assert.match(problems[0] ?? '', expected);
  }
});

test('every problem is reported at once, one per line', () => {
  const problems = problemsOf(() =>
    load(`storage:
  maxsize: lots
  lowwatermark: 0
proxy:
  remoteurl: https://a.io
  pushmode: rw
  password: a
  passwordfile: b
http:
  addr: ":x"
  tls: { certificate: a.crt }
bogus: true
`),
  );
  assert.deepEqual(problems.map((p) => p.split(':')[0]).sort(), [
    'bogus',
    'http.addr',
    'http.tls.key',
    'proxy.passwordfile',
    'proxy.pushmode',
    'storage.lowwatermark',
    'storage.maxsize',
  ]);
});

test('rules across upstreams: unique names, prefixes and hosts, one default', () => {
  const problems = problemsOf(() =>
    load(`upstreams:
  - { name: a, remoteurl: "https://a.io", default: true, prefix: x, hosts: [a.io] }
  - { name: a, remoteurl: "https://b.io", default: true, prefix: x, hosts: [A.io], password: p, passwordfile: f }
`),
  );
  assert.deepEqual(problems.sort(), [
    'upstreams[1].default: more than one upstream is the default (also upstreams[0]); allowed: at most one',
    'upstreams[1].hosts[0]: duplicate host "A.io" (also upstreams[0].hosts[0]); allowed: each host once across upstreams',
    'upstreams[1].name: duplicate name "a" (also upstreams[0].name); allowed: each name once across upstreams',
    'upstreams[1].passwordfile: password and passwordfile are both set; allowed: one of them',
    'upstreams[1].prefix: duplicate prefix "x" (also upstreams[0].prefix); allowed: each prefix once across upstreams',
  ]);
});

test('defaults: a lone upstream is the default; among several, only one marked so', () => {
  const one = load('upstreams:\n  - { name: a, remoteurl: "https://a.io/" }\n').config.upstreams;
  assert.deepEqual([one[0]?.default, one[0]?.remoteurl], [true, 'https://a.io']);
  const two = load('upstreams:\n  - { name: a, remoteurl: "https://a.io" }\n  - { name: b, remoteurl: "https://b.io" }\n').config.upstreams;
  assert.deepEqual(
    two.map((u) => u.default),
    [false, false],
  );
  const off = load('upstreams:\n  - { name: a, remoteurl: "https://a.io", default: false }\n').config.upstreams;
  assert.equal(off[0]?.default, false);
});

test('a file with neither proxy nor upstreams is a plain registry; so is an empty proxy key', () => {
  assert.deepEqual(load('http:\n  addr: 127.0.0.1:0\n').config.upstreams, []);
  assert.deepEqual(load('proxy:\n').config.upstreams, []);
  assert.deepEqual(load('').config.upstreams, []);
});

test('scalars keep the text they were written as', () => {
  const { config } = load('proxy:\n  remoteurl: https://a.io\n  username: 007\n  password: 0123\nlog:\n  fields: { n: 1.10 }\n');
  assert.equal(config.upstreams[0]?.username, '007');
  assert.equal(config.upstreams[0]?.password, '0123');
  assert.deepEqual(config.log.fields, { n: '1.10' });
});

test('a YAML syntax error names the file and the line', () => {
  const file = write('broken.yml', 'proxy:\n  remoteurl: [https://a.io\nhttp: {}\n');
  const problems = problemsOf(() => loadConfig({ file, env: {}, cwd: dir }));
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? '', new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid YAML at line \\d+, column \\d+: `));
  assert.deepEqual(
    problemsOf(() => loadConfig({ file: 'missing.yml', env: {}, cwd: dir })),
    ['missing.yml: cannot read the config file: no such file'],
  );
  assert.match(problemsOf(() => load('- a\n- b\n'))[0] ?? '', /: the document must be a mapping/);
});

test('passwordfile and ca: read at load time; missing or wrong files name key and file', () => {
  const files = { 'creds/pass': 'hunter2\r\n' };
  const ok = load('proxy:\n  remoteurl: https://a.io\n  passwordfile: creds/pass\n', { files }).config;
  assert.equal(ok.upstreams[0]?.password, 'hunter2');
  const problems = problemsOf(() => load('proxy:\n  remoteurl: https://a.io\n  passwordfile: nope.pass\n  ca: creds/pass\n', { files }));
  assert.equal(problems.length, 2);
  assert.match(problems[0] ?? '', /^proxy\.passwordfile: cannot read file ".*case-\w+\/nope\.pass": no such file$/);
  assert.equal(problems[1], 'proxy.ca: file "creds/pass" holds no PEM certificate; allowed: a PEM CA bundle');
});

test('http limits and admin.open: berth extension keys, checked like the rest', () => {
  const { config } = load('http:\n  headerstimeout: 5s\n  idletimeout: 2m\n  maxconnections: 100\n  maxconnectionsperclient: 10\nadmin:\n  open: true\n');
  assert.deepEqual(config.http.limits, { headersTimeoutMs: 5_000, idleTimeoutMs: 120_000, maxConnections: 100, maxConnectionsPerClient: 10 });
  assert.equal(config.adminOpen, true);
  assert.equal(config.admin, undefined);
  assert.match(
    problemsOf(() => load('http:\n  maxconnections: 0\n')).join('\n'),
    /^http\.maxconnections: invalid count "0"; allowed: a whole number of at least 1/m,
  );
  assert.match(
    problemsOf(() => load('admin:\n  open: true\n  username: a\n  password: b\n')).join('\n'),
    /admin\.username: open: true and credentials are both set/,
  );
  assert.match(problemsOf(() => load('admin:\n  password: b\n')).join('\n'), /admin\.username: required/);
});

test('the default connection bound stays under the open-file limit', () => {
  assert.equal(defaultMaxConnections(undefined), 4096);
  assert.equal(defaultMaxConnections(1_048_576), 4096);
  assert.equal(defaultMaxConnections(1024), 384);
  assert.equal(defaultMaxConnections(200), 64);
  assert.equal(loadConfig({ env: {}, cwd: dir, fdLimit: 1024 }).config.http.limits.maxConnections, 384);
});

test('verify: keys are read at load; a missing file, a non-key and an unsupported curve are problems naming the file', async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const pub = (curve: string) => generateKeyPairSync('ec', { namedCurve: curve }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const ok = load(
    'proxy: { remoteurl: https://harbor.example }\nverify:\n  - repositories: ["xing/*"]\n    cosign: { keys: [cosign.pub] }\n  - repositories: ["*"]\n    mode: off\n',
    { files: { 'cosign.pub': pub('prime256v1') } },
  ).config;
  assert.equal(ok.verify.length, 2);
  assert.equal(ok.verify[0]!.mode, 'enforce');
  assert.match(ok.verify[0]!.keys[0]!.file, /cosign\.pub$/);
  assert.equal(ok.verify[0]!.keys[0]!.key.asymmetricKeyType, 'ec');
  const problems = problemsOf(() =>
    load(
      'proxy: { remoteurl: https://harbor.example }\nverify:\n  - repositories: ["a/*"]\n    cosign: { keys: [missing.pub, junk.pub, k1.pub] }\n  - repositories: ["b"]\n    mode: warn\n  - repositories: ["c"]\n    notation: { truststore: x }\n    cosign: { keys: [k1.pub], bundle: true }\n',
      { files: { 'junk.pub': 'not a key', 'k1.pub': pub('secp256k1') } },
    ),
  );
  assert.match(problems.join('\n'), /verify\[0\]\.cosign\.keys\[0\]: cannot read public key file ".*missing\.pub": no such file/);
  assert.match(problems.join('\n'), /verify\[0\]\.cosign\.keys\[1\]: public key file ".*junk\.pub" holds no PEM public key/);
  assert.match(problems.join('\n'), /verify\[0\]\.cosign\.keys\[2\]: public key file ".*k1\.pub" holds an EC key on secp256k1/);
  assert.match(problems.join('\n'), /verify\[1\]: mode warn needs cosign\.keys/);
  assert.match(problems.join('\n'), /verify\[2\]\.cosign: bundle: true needs trustedroot/);
  assert.match(problems.join('\n'), /verify\[2\]\.notation: Notation signatures are not supported/);
});
