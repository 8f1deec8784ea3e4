/** @module e2e/cli.test — the command line contract: config check, the reference config.yml, bad config, help and version. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { BERTH_BIN } from '../fixtures/berth.js';
import { REFERENCE } from '../../src/config/testkit.js';
import { freePort, makeTempDir, removeDir, spawnService, waitForHttp } from '../fixtures/proc.js';

let dir: string;
before(async () => {
  dir = await makeTempDir('berth-cli-');
});
after(async () => {
  await removeDir(dir);
});

function berth(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BERTH_BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, cwd: dir });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** docs/design.md §2's edge-site config, verbatim but for its addresses. */
function referenceConfig(root: string, port: number, remote: string): string {
  return REFERENCE.replace('/var/lib/registry', root).replace('addr: :5000', `addr: 127.0.0.1:${port}`).replace('https://harbor.xing.com', remote);
}

test('config check accepts the reference config with one warning per unused key and redacts the password', async () => {
  const file = path.join(dir, 'ref.yml');
  await writeFile(file, referenceConfig(path.join(dir, 'data'), 5000, 'https://harbor.xing.com'));
  const r = berth(['config', 'check', file]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /storage\.cache/);
  assert.match(r.stderr, /health/);
  assert.match(r.stdout, /harbor\.xing\.com/);
  assert.ok(!r.stdout.includes('Harbor12345'), 'the password is never printed');
});

test('config check names the key path, value and what is allowed; exit status 2', async () => {
  const file = path.join(dir, 'bad.yml');
  await writeFile(file, 'version: 0.1\nproxy:\n  remoteur: https://x.example\nstorage:\n  maxsize: lots\n');
  const r = berth(['config', 'check', file]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /proxy\.remoteur/);
  assert.match(r.stderr, /storage\.maxsize/);
  assert.match(r.stderr, /lots/);
});

test('serve runs the reference config unchanged but for addresses, while the upstream is unreachable', async () => {
  const port = await freePort();
  const deadPort = await freePort();
  const file = path.join(dir, 'serve.yml');
  await writeFile(file, referenceConfig(path.join(dir, 'serve-data'), port, `http://127.0.0.1:${deadPort}`));
  const svc = spawnService({ cmd: process.execPath, args: [BERTH_BIN, 'serve', '--config', file], logFile: path.join(dir, 'serve.log') });
  try {
    await waitForHttp(`http://127.0.0.1:${port}/v2/`, 20_000, svc.exited);
    const res = await request(`http://127.0.0.1:${port}/v2/`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    await res.body.dump();
    const miss = await request(`http://127.0.0.1:${port}/v2/xing/app/manifests/v1`);
    const body = (await miss.body.json()) as { errors: Array<{ code: string }> };
    assert.equal(miss.statusCode >= 500, true);
    assert.equal(body.errors[0]?.code, 'UNAVAILABLE');
    const exit = await svc.stop(15_000);
    assert.equal(exit.code, 0, 'SIGTERM stops berth cleanly with status 0');
  } finally {
    await svc.stop(2_000);
  }
});

test('env overrides work the way distribution reads them', async () => {
  const file = path.join(dir, 'env.yml');
  await writeFile(file, referenceConfig(path.join(dir, 'data'), 5000, 'https://harbor.xing.com'));
  const r = berth(['config', 'check', file], { REGISTRY_PROXY_REMOTEURL: 'https://other.example.com', REGISTRY_HTTP_ADDR: ':6000' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /other\.example\.com/);
  assert.match(r.stdout, /6000/);
});

test('help and version', () => {
  const help = berth(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /serve/);
  assert.match(berth(['serve', '--help']).stdout, /--password-file/);
  assert.match(berth(['version']).stdout, /^berth \d+\.\d+\.\d+/);
});
