/** @module config/seed.test — the seed-setup keys: the push guard, resolve, http.listeners, and config check's config.yml form. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { configKit, problemsOf, PEM } from './testkit.js';
import { describeConfig } from './describe.js';
import { formatDuration, formatSize } from './units.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-config-seed-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const { load } = configKit(dir);
const proxy = (extra: string) => `proxy:\n  remoteurl: https://harbor.xing.com\n  username: admin\n  password: Harbor12345\n${extra}`;

test("forwarding pushes with berth's own account needs client authentication", () => {
  for (const mode of ['write-through', 'write-behind']) {
    const [problem, ...rest] = problemsOf(() => load(proxy(`  pushmode: ${mode}\n`)));
    assert.deepEqual(rest, []);
    assert.match(
      problem!,
      new RegExp(
        `^proxy\\.pushmode: ${mode} forwards pushes to https://harbor\\.xing\\.com with berth's own account "admin".*allowed: add auth\\.htpasswd .*passthroughauth: true`,
      ),
    );
  }
  const upstreams = problemsOf(() =>
    load('upstreams:\n  - name: a\n    remoteurl: https://a.io\n    username: u\n    password: p\n    pushmode: write-behind\n'),
  );
  assert.match(upstreams[0]!, /^upstreams\[0\]\.pushmode: write-behind/);
  // Fine: clients log in to berth, or to the upstream itself, or berth has no account to lend.
  load(`${proxy('  pushmode: write-through\n')}auth:\n  htpasswd:\n    path: htpasswd\n`, { files: { htpasswd: '' } });
  load(proxy('  pushmode: write-through\n  passthroughauth: true\n'));
  load('proxy:\n  remoteurl: https://a.io\n  pushmode: write-through\n');
  load(proxy('  pushmode: local\n'));
});

test('resolve takes an IP address; http.listeners take addr and tls', () => {
  assert.equal(load(proxy('  resolve: 10.10.102.190\n')).config.upstreams[0]!.resolve, '10.10.102.190');
  assert.equal(load(proxy('  resolve: "[fd00::1]"\n')).config.upstreams[0]!.resolve, 'fd00::1');
  assert.deepEqual(
    problemsOf(() => load(proxy('  resolve: harbor.lan\n'))),
    ['proxy.resolve: invalid address "harbor.lan"; allowed: an IPv4 or IPv6 address, e.g. 10.10.102.190'],
  );
  const { config } = load('http:\n  addr: :5000\n  listeners:\n    - addr: :5443\n      tls: { certificate: t.crt, key: t.key }\n    - addr: 127.0.0.1:5001\n');
  assert.deepEqual(
    config.http.listeners.map((l) => [l.host, l.port, l.tls?.certificate.endsWith('t.crt') ?? false]),
    [
      ['', 5443, true],
      ['127.0.0.1', 5001, false],
    ],
  );
  assert.match(problemsOf(() => load('http:\n  listeners:\n    - addr: nope\n'))[0]!, /^http\.listeners\[0\]\.addr: invalid address "nope"/);
});

test('config check prints a config.yml that loads back to the same configuration', () => {
  const text = `${proxy('  ca: ca.crt\n  tagttl: 90s\n  ttl: 168h\n  resolve: 10.0.0.1\n')}storage:\n  maxsize: 50GiB\n  filesystem: { rootdirectory: /var/lib/berth }\nhttp:\n  addr: :5000\n  listeners: [{ addr: ":5001" }]\n`;
  const { config } = load(text, { files: { 'ca.crt': PEM } });
  const shown = describeConfig(config) as { proxy: Record<string, unknown>; storage: Record<string, unknown> };
  assert.equal(shown.proxy['tagttl'], '90s');
  assert.equal(shown.proxy['ttl'], '168h');
  assert.equal(shown.proxy['password'], '<redacted>');
  assert.equal(shown.storage['maxsize'], '50GiB');
  const printed = JSON.parse(JSON.stringify(shown)) as { proxy: Record<string, unknown> };
  printed.proxy['password'] = 'Harbor12345';
  printed.proxy['ca'] = 'ca.crt';
  const again = load(stringify(printed), { files: { 'ca.crt': PEM } }).config;
  assert.deepEqual(again, config);
  assert.equal(formatDuration(1500), '1500ms');
  assert.equal(formatSize(1000), '1000B');
});
