/** @module config/ops.test — the admin and warm sections: defaults, password files, and every invalid value named. */

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeConfig } from './describe.js';
import { configKit, problemsOf } from './testkit.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-config-ops-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const { load } = configKit(dir);
const base = 'proxy: { remoteurl: https://harbor.xing.com }\n';

test('without admin and warm sections: open admin API, nothing scheduled, hourly interval by default', () => {
  const { config } = load(base);
  assert.equal(config.admin, undefined);
  assert.deepEqual(config.warm, { intervalMs: 3_600_000, images: [], platforms: [], allPlatforms: false });
});

test('admin credentials from a password file (relative to the config), redacted when printed; env overrides work', () => {
  const { config } = load(`${base}admin: { username: ops, passwordfile: admin.pass }\n`, { files: { 'admin.pass': 's3cret\n' } });
  assert.deepEqual(config.admin, { username: 'ops', password: 's3cret' });
  assert.equal((describeConfig(config) as { admin: { password: string } }).admin.password, '<redacted>');
  const fromEnv = load(`${base}admin: { username: ops, password: a }\n`, { env: { REGISTRY_ADMIN_PASSWORD: 'b' } });
  assert.equal(fromEnv.config.admin?.password, 'b');
});

test('warm: images and platforms are normalised', () => {
  const { config } = load(`${base}warm:\n  interval: 30m\n  images: [harbor.xing.com/xing/app, "xing/tool:v2"]\n  platforms: [linux/aarch64, linux/amd64]\n`);
  assert.deepEqual(config.warm, {
    intervalMs: 1_800_000,
    images: ['harbor.xing.com/xing/app:latest', 'xing/tool:v2'],
    platforms: ['linux/arm64', 'linux/amd64'],
    allPlatforms: false,
  });
});

test('invalid admin and warm values are errors naming the key path', () => {
  assert.deepEqual(
    problemsOf(() => load(`${base}admin: { username: ops }\n`)),
    ['admin.password: required when admin is set; allowed: password or passwordfile'],
  );
  assert.match(
    problemsOf(() => load(`${base}admin: { username: ops, password: a, passwordfile: b }\n`))[0]!,
    /^admin.passwordfile: password and passwordfile are both set/,
  );
  assert.match(problemsOf(() => load(`${base}admin: { username: ops, passwordfile: missing.pass }\n`))[0]!, /^admin.passwordfile: cannot read file/);
  const problems = problemsOf(() => load(`${base}warm:\n  interval: soon\n  images: [Bad/Name]\n  platforms: [linux]\n  colour: red\n`));
  assert.equal(problems.length, 4, problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('warm.interval: invalid duration "soon"')));
  assert.ok(problems.some((p) => p.startsWith('warm.images[0]: invalid image reference "Bad/Name"')));
  assert.ok(problems.some((p) => p.startsWith('warm.platforms[0]: invalid platform "linux"')));
  assert.ok(problems.some((p) => p.startsWith('warm.colour: unknown key')));
  assert.match(
    problemsOf(() => load(`${base}warm: { images: [a], platforms: [linux/amd64], allplatforms: true }\n`))[0]!,
    /^warm.allplatforms: platforms and allplatforms are both set/,
  );
});

test('admin.trustloopback: alone or beside credentials, printed when set; an admin password over 72 bytes is refused', () => {
  assert.equal(load(base).config.adminTrustLoopback, undefined, 'absent: the default is decided from auth and admin (assembly/operations adminAccess)');
  const alone = load(`${base}admin: { trustloopback: true }\n`).config;
  assert.equal(alone.adminTrustLoopback, true);
  assert.equal(alone.admin, undefined);
  assert.deepEqual(describeConfig(alone)['admin'], { trustloopback: true });
  assert.equal(load(`${base}admin: { username: ops, password: a, trustloopback: false }\n`).config.adminTrustLoopback, false);
  assert.deepEqual(
    problemsOf(() => load(`${base}admin: { username: ops, trustloopback: true }\n`)),
    ['admin.password: required when admin is set; allowed: password or passwordfile'],
  );
  assert.deepEqual(
    problemsOf(() => load(`${base}admin: { username: ops, password: ${'p'.repeat(80)} }\n`)),
    ['admin.password: 80 bytes; allowed: at most 72 (longer passwords are refused at login, as bcrypt does)'],
  );
});
