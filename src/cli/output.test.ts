/** @module cli/output.test — what node-config and cert generate print: paths under --dir, a Docker trust folder for every name and IP. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeConfig } from './node-config.js';
import { generateCertificates } from './cert.js';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-cli-output-'));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function nodeConfigOut(args: { write?: boolean; dir: string; mirror: string }): Promise<string> {
  let out = '';
  const io = { cwd: args.dir, stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (out += t) } };
  assert.equal(await nodeConfig({ mirror: args.mirror, registry: ['harbor.xing.com'], dir: args.dir, write: args.write }, io), 0, out);
  return out;
}

test('node-config --dir X prints and writes paths under X, never the real /etc', async () => {
  const dir = await tempDir();
  // An https mirror for a registry other than Docker Hub leaves daemon.json nothing to add.
  const written = await nodeConfigOut({ dir, mirror: 'https://10.0.0.5:5000', write: true });
  assert.match(written, new RegExp(`^${join(dir, 'etc/docker/daemon.json')}: Docker: nothing to add`, 'm'));
  const printed = await nodeConfigOut({ dir, mirror: 'http://10.0.0.5:5000' });
  assert.match(printed, new RegExp(`^# ==> ${join(dir, 'etc/docker/daemon.json')} `, 'm'));
  for (const line of `${written}\n${printed}`.split('\n').filter((l) => l.startsWith('# ==>') || /^\/|^wrote /.test(l))) {
    assert.ok(line.includes(dir), line);
  }
});

test('cert generate prints a Docker trust folder for every name and IP nodes use', async () => {
  const dir = await tempDir();
  const text = generateCertificates({ hosts: ['harbor.xing.com'], ips: ['10.20.0.1'], out: join(dir, 'tls'), days: 30, port: 5000 });
  for (const name of ['harbor.xing.com:5000', '10.20.0.1:5000'])
    assert.match(text, new RegExp(`mkdir -p /etc/docker/certs\\.d/${name}\\n +cp .*/etc/docker/certs\\.d/${name}/ca\\.crt\\n`));
});
