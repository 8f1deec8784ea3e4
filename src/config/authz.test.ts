/** @module config/authz.test — the access and upstream-trust keys: dockerconfig, client certificates, realms, rules, pass-through. */

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeConfig } from './describe.js';
import { candidateHosts, dockerConfigCredentials, registryKey } from './dockerconfig.js';
import { configKit, PEM, problemsOf } from './testkit.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-config-authz-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const { load } = configKit(dir);

const KEY = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n';
const b64 = (s: string) => Buffer.from(s).toString('base64');

test('dockerconfig: credentials from auths, matched by the remoteurl host, then hosts, with Docker Hub aliases', () => {
  const files = {
    'docker/config.json': JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass') },
        'harbor.xing.com': { username: 'robot$edge', password: 'tok' },
        'mirror.xing.com:5000': { auth: b64('m:p') },
      },
    }),
  };
  const text = `upstreams:
  - name: harbor
    remoteurl: https://harbor.xing.com
    dockerconfig: docker/config.json
  - name: hub
    remoteurl: https://registry-1.docker.io
    hosts: [docker.io]
    dockerconfig: docker/config.json
  - name: mirror
    remoteurl: http://10.0.0.5:5000
    hosts: [mirror.xing.com:5000]
    dockerconfig: docker/config.json
`;
  const [harbor, hub, mirror] = load(text, { files }).config.upstreams;
  assert.deepEqual([harbor?.username, harbor?.password], ['robot$edge', 'tok']);
  assert.deepEqual([hub?.username, hub?.password], ['hubuser', 'hub:pass']);
  assert.deepEqual([mirror?.username, mirror?.password], ['m', 'p']);
  assert.equal(registryKey('HTTPS://Harbor.Xing.com/v2/'), 'harbor.xing.com');
  assert.deepEqual(candidateHosts('https://registry-1.docker.io', []), ['registry-1.docker.io', 'docker.io', 'index.docker.io']);
});

test('dockerconfig: missing entries, helpers, identity tokens and conflicts are errors that name the fix', () => {
  const files = {
    'helper.json': JSON.stringify({ auths: {}, credsStore: 'desktop' }),
    'token.json': JSON.stringify({ auths: { 'a.io': { identitytoken: 'x' } } }),
    'bad.json': '{',
  };
  const upstream = (file: string, extra = '') => `proxy:\n  remoteurl: https://a.io\n  dockerconfig: ${file}\n${extra}`;
  assert.match(
    problemsOf(() => load(upstream('helper.json'), { files }))[0] ?? '',
    /^proxy\.dockerconfig: file "helper\.json" has no auths entry for a\.io; credentials kept by a credential helper/,
  );
  assert.match(problemsOf(() => load(upstream('token.json'), { files }))[0] ?? '', /entry for a\.io: holds only an identitytoken/);
  assert.match(problemsOf(() => load(upstream('bad.json'), { files }))[0] ?? '', /is not valid JSON/);
  assert.deepEqual(problemsOf(() => load(upstream('token.json', '  username: u\n  password: p\n'), { files })).slice(0, 2), [
    'proxy.username: dockerconfig and username are both set; allowed: credentials from one of them',
    'proxy.password: dockerconfig and password are both set; allowed: credentials from one of them',
  ]);
  assert.throws(() => dockerConfigCredentials('{"auths":{"b.io":{"auth":"bm9jb2xvbg=="}}}', ['b.io']), /not base64 of "username:password"/);
});

test('client certificate, token realms and pass-through load; the key is redacted when printed', () => {
  const files = { 'c.crt': PEM, 'c.key': KEY };
  const { config } = load(
    `upstreams:
  - name: harbor
    remoteurl: https://harbor.xing.com
    certificate: c.crt
    key: c.key
    tokenrealms: [auth.example.com, Login.Example.net:8443]
    passthroughauth: true
    passthroughttl: 30s
    passthroughoutage: deny
  - name: hub
    remoteurl: https://registry-1.docker.io
    passthroughauth: true
`,
    { files },
  );
  const [harbor, hub] = config.upstreams;
  assert.deepEqual(harbor?.clientcert, { certificate: PEM, key: KEY });
  assert.deepEqual(harbor?.tokenrealms, ['auth.example.com', 'login.example.net:8443']);
  assert.deepEqual(harbor?.passthrough, { ttlMs: 30_000, outage: 'deny' });
  assert.deepEqual(hub?.passthrough, { ttlMs: 60_000, outage: 'lastknown' });
  assert.equal(hub?.clientcert, undefined);
  const printed = JSON.stringify(describeConfig(config));
  assert.ok(!printed.includes('PRIVATE KEY'), printed);
  assert.match(printed, /"key":"<redacted>"/);
});

test('client certificate and pass-through keys are checked together', () => {
  const files = { 'c.crt': PEM };
  assert.deepEqual(
    problemsOf(() => load('proxy:\n  remoteurl: https://a.io\n  certificate: c.crt\n  passthroughttl: 10s\n  passthroughoutage: never\n', { files })),
    [
      'proxy.passthroughoutage: invalid value "never"; allowed: lastknown, deny',
      'proxy.key: required when proxy.certificate is set',
      'proxy.passthroughttl: only meaningful with passthroughauth: true; allowed: set passthroughauth: true or remove it',
      'proxy.passthroughoutage: only meaningful with passthroughauth: true; allowed: set passthroughauth: true or remove it',
    ],
  );
  assert.deepEqual(
    problemsOf(() => load('proxy:\n  remoteurl: https://a.io\n  key: c.crt\n', { files })),
    ['proxy.certificate: required when proxy.key is set'],
  );
  assert.deepEqual(
    problemsOf(() => load('proxy:\n  remoteurl: https://a.io\n  key: c.crt\n  certificate: c.crt\n', { files })),
    ['proxy.key: file "c.crt" holds no PEM private key; allowed: a PEM private key'],
  );
});

test('auth.rules: users, repository patterns, actions, upstream names checked against the upstreams', () => {
  const base = `upstreams:
  - name: harbor
    remoteurl: https://harbor.xing.com
auth:
  htpasswd: { realm: edge, path: /etc/berth/htpasswd }
  rules:
`;
  const { config } = load(`${base}    - { users: [alice, bob], repositories: ["xing/*"], actions: [pull, push], upstream: harbor }
    - { users: [anonymous], actions: [pull] }
`);
  assert.deepEqual(config.auth, {
    htpasswd: { realm: 'edge', path: '/etc/berth/htpasswd' },
    rules: [
      { users: ['alice', 'bob'], repositories: ['xing/*'], actions: ['pull', 'push'], upstream: 'harbor' },
      { users: ['anonymous'], repositories: ['*'], actions: ['pull'] },
    ],
  });
  assert.deepEqual(
    problemsOf(() => load(`${base}    - { users: [alice], actions: [pull, fly], upstream: hub }\n    - { actions: [pull], user: x }\n`)),
    [
      'auth.rules[0].actions[1]: invalid value "fly"; allowed: pull, push, delete, *',
      'auth.rules[1].users: required key is missing',
      'auth.rules[1].user: unknown key; allowed here: users, repositories, actions, upstream',
      'auth.rules[0].upstream: no upstream is named "hub"; allowed: "harbor"',
    ],
  );
  const plain = load('auth:\n  rules:\n    - { users: [anonymous], actions: [pull] }\n').config;
  assert.deepEqual(plain.auth, { rules: [{ users: ['anonymous'], repositories: ['*'], actions: ['pull'] }] });
});

test('environment overrides reach the new keys', () => {
  const { config } = load('proxy:\n  remoteurl: https://a.io\n', {
    env: {
      REGISTRY_PROXY_TOKENREALMS: '[auth.a-login.io]',
      REGISTRY_PROXY_PASSTHROUGHAUTH: 'true',
      REGISTRY_AUTH_RULES_0_USERS: '[anonymous]',
      REGISTRY_AUTH_RULES_0_ACTIONS: '[pull]',
    },
  });
  assert.deepEqual(config.upstreams[0]?.tokenrealms, ['auth.a-login.io']);
  assert.equal(config.upstreams[0]?.passthrough?.outage, 'lastknown');
  assert.deepEqual(config.auth?.rules?.[0]?.users, ['anonymous']);
});

test('auth.rules naming users need auth.htpasswd to log them in', () => {
  assert.deepEqual(
    problemsOf(() => load('auth:\n  rules:\n    - { users: [anonymous, alice], actions: [pull] }\n')),
    ['auth.rules[0].users: "alice" can never log in: auth.htpasswd is not set; allowed: anonymous, or set auth.htpasswd'],
  );
});

test('auth.token without realm: berth issues tokens (service, expiration, key defaulted to the root directory); with realm: accepted, not used', () => {
  const { config } = load('storage:\n  filesystem:\n    rootdirectory: /var/lib/berth\nauth:\n  token:\n    service: edge\n    expiration: 2m\n');
  assert.deepEqual(config.auth?.token, { service: 'edge', expirationMs: 120_000, key: '/var/lib/berth/token.key', generated: true });
  const keyed = load('auth:\n  token: { key: /etc/berth/token.pem }\n').config;
  assert.deepEqual(keyed.auth?.token, { service: 'berth', expirationMs: 300_000, key: '/etc/berth/token.pem', generated: false });
  const external = load('auth:\n  token: { realm: https://harbor.xing.com/service/token, service: harbor-registry, issuer: harbor-token-issuer }\n');
  assert.equal(external.config.auth?.token, undefined);
  assert.ok(external.warnings.includes('auth.token.realm: accepted for compatibility with distribution, not used by berth'), external.warnings.join('\n'));
  assert.deepEqual(problemsOf(() => load('auth:\n  token: { expiration: soon }\n')).length, 1);
});
