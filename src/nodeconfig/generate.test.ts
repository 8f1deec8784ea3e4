/** @module nodeconfig/generate.test — the node files for each runtime, their comments, and merging into existing files. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  HOSTS_MARKER,
  NO_FALLBACK_SERVER,
  NodeConfigError,
  generateNodeConfig,
  mergeDaemonJson,
  mergeHostsFile,
  parseMirror,
  parseRegistry,
} from './generate.js';

const all = ['containerd', 'docker', 'registries', 'hosts'] as const;
const byPath = (files: ReturnType<typeof generateNodeConfig>) => new Map(files.map((f) => [f.path, f]));

test('containerd: one hosts.toml per registry, berth as a pull/resolve mirror, the real registry as fallback', () => {
  const files = byPath(
    generateNodeConfig({
      mirror: 'http://10.0.0.5:5000',
      registries: [parseRegistry('harbor.xing.com'), parseRegistry('docker.io')],
      kinds: ['containerd'],
    }),
  );
  assert.deepEqual([...files.keys()], ['/etc/containerd/certs.d/harbor.xing.com/hosts.toml', '/etc/containerd/certs.d/docker.io/hosts.toml']);
  const harbor = files.get('/etc/containerd/certs.d/harbor.xing.com/hosts.toml')!.content;
  assert.match(harbor, /^server = "https:\/\/harbor\.xing\.com"$/m);
  assert.match(harbor, /^\[host\."http:\/\/10\.0\.0\.5:5000"\]\n {2}capabilities = \["pull", "resolve"\]$/m);
  assert.match(harbor, /^# containerd: pull harbor\.xing\.com images through berth/m);
  assert.match(files.get('/etc/containerd/certs.d/docker.io/hosts.toml')!.content, /^server = "https:\/\/registry-1\.docker\.io"$/m);
});

test('containerd --no-fallback and --ca: a closed server, and the CA copied beside hosts.toml', () => {
  const files = byPath(
    generateNodeConfig({
      mirror: 'https://berth.site.example:5443',
      registries: [{ name: 'harbor.xing.com' }],
      kinds: ['containerd'],
      noFallback: true,
      ca: { pem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n', source: '/tmp/ca.pem' },
    }),
  );
  const toml = files.get('/etc/containerd/certs.d/harbor.xing.com/hosts.toml')!.content;
  assert.match(toml, new RegExp(`^server = "${NO_FALLBACK_SERVER}"$`, 'm'));
  assert.match(toml, /^ {2}ca = "berth-ca\.crt"$/m);
  assert.equal(files.get('/etc/containerd/certs.d/harbor.xing.com/berth-ca.crt')!.copyOf, '/tmp/ca.pem');
});

test('--ca: each runtime gets one copy of the CA where it reads it, with what it is for; none without --ca', () => {
  const ca = { pem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n', source: '/tmp/ca.pem' };
  const input = {
    mirror: 'https://berth.site.example:5443',
    registries: [{ name: 'harbor.xing.com' }],
    kinds: ['containerd', 'docker', 'registries'] as const,
  };
  const copies = generateNodeConfig({ ...input, ca }).filter((f) => f.copyOf !== undefined);
  assert.deepEqual(
    copies.map((f) => [f.kind, f.path, f.action, f.content, f.copyOf]),
    [
      ['containerd', '/etc/containerd/certs.d/harbor.xing.com/berth-ca.crt', 'replace', ca.pem, ca.source],
      ['docker', '/etc/docker/certs.d/berth.site.example:5443/ca.crt', 'replace', ca.pem, ca.source],
      ['registries', '/etc/containers/certs.d/berth.site.example:5443/ca.crt', 'replace', ca.pem, ca.source],
    ],
  );
  for (const f of copies) assert.match(f.about, /trust the CA of berth's certificate/);
  assert.equal(
    generateNodeConfig(input).some((f) => f.path.endsWith('.crt')),
    false,
  );
});

test('docker: registry-mirrors only for Docker Hub, insecure-registries for plain HTTP, a note for other registries', () => {
  const [hub] = generateNodeConfig({
    mirror: 'http://10.0.0.5:5000',
    registries: [{ name: 'docker.io' }, { name: 'harbor.xing.com', prefix: 'harbor' }],
    kinds: ['docker'],
  });
  assert.equal(hub!.action, 'merge-json');
  assert.deepEqual(JSON.parse(hub!.content), { 'registry-mirrors': ['http://10.0.0.5:5000'], 'insecure-registries': ['10.0.0.5:5000'] });
  assert.ok(hub!.notes!.some((n) => n.includes('docker pull 10.0.0.5:5000/harbor/REPOSITORY:TAG')));
  const [tls] = generateNodeConfig({ mirror: 'https://10.0.0.5', registries: [{ name: 'harbor.xing.com' }], kinds: ['docker'] });
  assert.deepEqual(JSON.parse(tls!.content), {});
});

test('registries.conf: a [[registry]] per name with berth as mirror, prefixes as mirror paths, insecure for HTTP', () => {
  const [conf] = generateNodeConfig({
    mirror: 'http://10.0.0.5:5000',
    registries: [{ name: 'harbor.xing.com', prefix: 'harbor' }, { name: 'docker.io' }],
    kinds: ['registries'],
  });
  assert.equal(conf!.path, '/etc/containers/registries.conf.d/50-berth.conf');
  assert.match(
    conf!.content,
    /\[\[registry\]\]\nprefix = "harbor\.xing\.com"\nlocation = "harbor\.xing\.com"\n\n\[\[registry\.mirror\]\]\nlocation = "10\.0\.0\.5:5000\/harbor"\ninsecure = true/,
  );
  assert.match(conf!.content, /# No prefix: berth sends docker\.io requests to its default upstream/);
  assert.match(conf!.content, /^# CRI-O and podman:/m);
});

test("hosts line: berth IP and the registries' names (Docker Hub's API host too), marked; a placeholder for a DNS name", () => {
  const [hosts] = generateNodeConfig({ mirror: 'https://10.0.0.5', registries: [{ name: 'harbor.xing.com' }, { name: 'docker.io' }], kinds: ['hosts'] });
  assert.match(hosts!.content, new RegExp(`^10\\.0\\.0\\.5 harbor\\.xing\\.com docker\\.io registry-1\\.docker\\.io ${HOSTS_MARKER}$`, 'm'));
  assert.match(hosts!.content, /^# hosts-file approach/m);
  const [named] = generateNodeConfig({ mirror: 'https://berth.site', registries: [{ name: 'harbor.xing.com' }], kinds: ['hosts'] });
  assert.match(named!.content, /^BERTH_IP harbor\.xing\.com/m);
});

test('every file says what it does', () => {
  const files = generateNodeConfig({ mirror: 'http://10.0.0.5:5000', registries: [{ name: 'harbor.xing.com' }], kinds: all });
  assert.deepEqual([...new Set(files.map((f) => f.kind))], [...all]);
  for (const f of files) {
    assert.ok(f.about.length > 20, f.path);
    if (f.action !== 'merge-json') assert.match(f.content, /^# /, f.path);
  }
});

test('bad arguments name the flag and the fix', () => {
  assert.throws(() => parseMirror('10.0.0.5:5000'), /--mirror .*scheme must be http or https|is not a URL/);
  assert.throws(() => parseMirror('http://10.0.0.5:5000/v2/'), /no path/);
  assert.throws(() => parseRegistry('https://harbor.xing.com'), NodeConfigError);
  assert.throws(() => parseRegistry('harbor.xing.com/xing'), /registry's host name/);
  assert.throws(() => parseRegistry('harbor.xing.com=Bad Prefix'), /prefix/);
  assert.deepEqual(parseRegistry('Harbor.Xing.com:8443=harbor'), { name: 'harbor.xing.com:8443', prefix: 'harbor' });
  assert.throws(() => generateNodeConfig({ mirror: 'http://a:1', registries: [], kinds: all }), /at least one registry/);
  assert.throws(
    () => generateNodeConfig({ mirror: 'http://a:1', registries: [{ name: 'x.io' }], kinds: all, ca: { pem: '', source: 'c' } }),
    /--ca applies to a berth served over TLS/,
  );
});

test('merging: daemon.json keeps its keys and adds each entry once; /etc/hosts keeps foreign lines and replaces ours', () => {
  const merged = mergeDaemonJson(
    { 'log-level': 'warn', 'insecure-registries': ['a:1'] },
    { 'insecure-registries': ['a:1', 'b:2'], 'registry-mirrors': ['http://b:2'] },
  );
  assert.deepEqual(merged, { 'log-level': 'warn', 'insecure-registries': ['a:1', 'b:2'], 'registry-mirrors': ['http://b:2'] });
  const first = mergeHostsFile('127.0.0.1 localhost\n', `# comment\n10.0.0.5 a.io ${HOSTS_MARKER}\n`);
  assert.equal(first, `127.0.0.1 localhost\n10.0.0.5 a.io ${HOSTS_MARKER}\n`);
  assert.equal(mergeHostsFile(first, `10.0.0.6 a.io ${HOSTS_MARKER}\n`), `127.0.0.1 localhost\n10.0.0.6 a.io ${HOSTS_MARKER}\n`);
});
