/** @module auth/access.test — htpasswd users, rules per upstream and repository, challenges and denials. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { pino } from 'pino';
import type { BerthConfig, UpstreamConfig } from '../config/types.js';
import type { Target, Upstream } from '../upstream/target.js';
import { OciError } from '../oci/errors.js';
import { AccessControl, parseBasic } from './access.js';
import { Htpasswd, dummyHash } from './htpasswd.js';
import { Rules, repositoryPattern } from './rules.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-access-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const logger = pino({ level: 'silent' });
const now = () => 1_000_000;
const hash = (pw: string) => bcrypt.hashSync(pw, 4);
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

test('repository patterns: * spans any characters, / included; nothing else is special', () => {
  assert.ok(repositoryPattern('xing/*').test('xing/team/app'));
  assert.ok(!repositoryPattern('xing/*').test('xingo/app'));
  assert.ok(repositoryPattern('*/base').test('lib/base'));
  assert.ok(!repositoryPattern('a.b').test('axb'));
  assert.ok(repositoryPattern('*').test('anything/at/all'));
});

test('rules: named users, anonymous, any authenticated user, per upstream and action', () => {
  const rules = new Rules([
    { users: ['alice'], repositories: ['xing/*'], actions: ['pull', 'push'], upstream: 'harbor' },
    { users: ['anonymous'], repositories: ['public/*'], actions: ['pull'] },
    { users: ['*'], repositories: ['shared/*'], actions: ['*'] },
  ]);
  assert.ok(rules.allows('alice', 'harbor', 'xing/app', 'push'));
  assert.ok(!rules.allows('alice', 'hub', 'xing/app', 'pull'), 'another upstream');
  assert.ok(!rules.allows('alice', 'harbor', 'xing/app', 'delete'));
  assert.ok(!rules.allows('bob', 'harbor', 'xing/app', 'pull'));
  assert.ok(rules.allows(undefined, 'hub', 'public/base', 'pull'));
  assert.ok(!rules.allows(undefined, 'hub', 'shared/x', 'pull'), '* is not anonymous');
  assert.ok(rules.allows('bob', '', 'shared/x', 'delete'));
  assert.ok(rules.anonymousAllowed);
});

test('htpasswd: bcrypt entries ($2y$ as written by htpasswd -B), others ignored; a failed reload keeps the users', async () => {
  const file = join(dir, 'htpasswd');
  writeFileSync(file, `# comment\nalice:${hash('pw-a').replace(/^\$2b\$/, '$2y$')}\nbob:{SHA}abc=\n\ncarol:${hash('pw-c')}\n`);
  const h = new Htpasswd(file, logger, now);
  assert.equal(h.load(), 2);
  assert.equal(await h.verify('alice', 'pw-a'), true);
  assert.equal(await h.verify('alice', 'pw-a'), true, 'remembered');
  assert.equal(await h.verify('alice', 'nope'), false);
  assert.equal(await h.verify('bob', 'abc'), false);
  assert.equal(await h.verify('mallory', 'pw-a'), false);
  rmSync(file);
  h.reload();
  assert.equal(await h.verify('carol', 'pw-c'), true);
});

test('htpasswd: an unknown user is checked at the cost of the costliest entry, recomputed on reload', async () => {
  const file = join(dir, 'htpasswd-cost');
  const costOf = (h: string) => Number(h.slice(4, 6));
  // Fake hashes of the right shape: the injected compare only records the cost each check runs at.
  const entry = (user: string, cost: number) => `${user}:${dummyHash(cost).replace(/W27Z/, 'X27Z')}\n`;
  writeFileSync(file, entry('cheap', 5) + entry('dear', 12));
  const costs: number[] = [];
  const h = new Htpasswd(file, logger, now, async (_pw, hashed) => {
    costs.push(costOf(hashed));
    return false;
  });
  h.load();
  assert.equal(h.dummyCost, 12);
  assert.equal(await h.verify('dear', 'wrong', '10.0.0.1'), false);
  assert.equal(await h.verify('nobody', 'wrong', '10.0.0.2'), false);
  assert.deepEqual(costs, [12, 12], 'a cost-12 user and an unknown user go through bcrypt of the same cost');
  writeFileSync(file, entry('cheap', 5) + entry('mid', 7));
  h.reload();
  assert.equal(await h.verify('nobody', 'wrong', '10.0.0.3'), false);
  assert.equal(costs.at(-1), 7);
});

test('htpasswd: a password over 72 bytes is refused even when its first 72 are right (bcrypt would ignore the rest)', async () => {
  const file = join(dir, 'htpasswd-long');
  const first72 = 'k'.repeat(72);
  writeFileSync(file, `dave:${hash(first72)}\n`);
  const h = new Htpasswd(file, logger, now);
  h.load();
  try {
    assert.equal(await h.verify('dave', `${first72}-another-tail`, '10.0.0.4'), false);
    assert.equal(await h.verify('dave', `${first72}`, '10.0.0.5'), true);
  } finally {
    await h.close();
  }
});

test('htpasswd: a flood of password checks is bounded; the excess is refused with 429, not queued without end', async () => {
  const file = join(dir, 'htpasswd-flood');
  writeFileSync(file, `alice:${bcrypt.hashSync('pw', 8)}\n`);
  const h = new Htpasswd(file, logger, now);
  h.load();
  try {
    // Many addresses at once, so the failure backoff does not get in first.
    const results = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => h.verify('alice', `wrong-${i}`, `10.0.0.${i}`)));
    const refused = results.filter((r) => r.status === 'rejected');
    assert.ok(refused.length > 0, 'some checks must be refused');
    for (const r of refused) assert.ok(r.status === 'rejected' && r.reason instanceof OciError && r.reason.code === 'TOOMANYREQUESTS');
    assert.ok(results.filter((r) => r.status === 'fulfilled').every((r) => r.status === 'fulfilled' && r.value === false));
    assert.equal(await h.verify('alice', 'pw', '10.1.0.1'), true, 'the gate frees up once the flood is over');
  } finally {
    await h.close();
  }
});

test('htpasswd: an address that keeps failing backs off (429) while verified sessions and clean addresses go on', async () => {
  const file = join(dir, 'htpasswd-backoff');
  writeFileSync(file, `alice:${bcrypt.hashSync('pw', 4)}\nbob:${bcrypt.hashSync('pw-b', 4)}\n`);
  let t = 1_000_000;
  const h = new Htpasswd(file, logger, () => t);
  h.load();
  try {
    assert.equal(await h.verify('bob', 'pw-b', '10.0.0.9'), true, 'bob verified before the attack');
    for (let i = 0; i < 5; i++) assert.equal(await h.verify('alice', `wrong-${i}`, '10.0.0.9'), false);
    await assert.rejects(
      h.verify('alice', 'pw', '10.0.0.9'),
      (e: unknown) => e instanceof OciError && e.code === 'TOOMANYREQUESTS' && e.headers['Retry-After'] === '1',
    );
    assert.equal(await h.verify('bob', 'pw-b', '10.0.0.9'), true, 'a verified session is unaffected');
    assert.equal(await h.verify('alice', 'pw', '10.0.0.10'), true, 'the user from a clean address is still checked');
    for (let i = 0; i < 5; i++) assert.equal(await h.verify('alice', `again-${i}`, '10.0.0.11'), false);
    t += 1_001;
    assert.equal(await h.verify('alice', 'wrong-6', '10.0.0.11'), false, 'after the wait one more check runs');
    await assert.rejects(
      h.verify('alice', 'wrong-7', '10.0.0.11'),
      (e: unknown) => e instanceof OciError && e.headers['Retry-After'] === '2',
      'the wait doubles',
    );
  } finally {
    await h.close();
  }
});

test('Authorization: Basic is read; other schemes and garbage count as no credentials', () => {
  assert.deepEqual(parseBasic(basic('u', 'p:w')), { username: 'u', password: 'p:w' });
  assert.equal(parseBasic('Bearer abc'), undefined);
  assert.equal(parseBasic('Basic !!!'), undefined);
  assert.equal(parseBasic(undefined), undefined);
});

function setup(auth: BerthConfig['auth']) {
  const upstreamConfig = { name: 'harbor', passthrough: undefined } as unknown as UpstreamConfig;
  const upstream = { config: upstreamConfig, client: {} } as unknown as Upstream;
  const config = { auth, upstreams: [upstreamConfig] } as unknown as BerthConfig;
  const access = new AccessControl({ config, upstreams: [upstream], logger, now });
  const target = (repository: string): Target => ({ upstream, key: 'harbor', repository });
  const pull = (authorization: string | undefined, repository: string) =>
    access.authorize(authorization, { target: target(repository), action: 'pull', probe: { method: 'HEAD', path: 'manifests/v1' } });
  return { access, target, pull };
}

async function rejectsWith(p: Promise<unknown>, code: string, status: number): Promise<OciError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof OciError);
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    return err;
  }
  return assert.fail(`expected ${code}`);
}

test('htpasswd with rules: allowed, 401 with a Basic challenge for anonymous or wrong passwords, 403 for others', async () => {
  const path = join(dir, 'users');
  writeFileSync(path, `alice:${hash('pw-a')}\nbob:${hash('pw-b')}\n`);
  const { access, pull, target } = setup({
    htpasswd: { realm: 'edge "site"', path },
    rules: [
      { users: ['alice'], repositories: ['xing/*'], actions: ['pull'], upstream: 'harbor' },
      { users: ['anonymous'], repositories: ['public/*'], actions: ['pull'] },
    ],
  });
  assert.equal(await pull(basic('alice', 'pw-a'), 'xing/app'), 'alice');
  assert.equal(await pull(undefined, 'public/base'), 'anonymous');
  const challenge = await rejectsWith(pull(undefined, 'xing/app'), 'UNAUTHORIZED', 401);
  assert.equal(challenge.headers['WWW-Authenticate'], 'Basic realm="edge site", charset="UTF-8"');
  await rejectsWith(pull(basic('alice', 'wrong'), 'public/base'), 'UNAUTHORIZED', 401);
  const denied = await rejectsWith(pull(basic('bob', 'pw-b'), 'xing/app'), 'DENIED', 403);
  assert.match(denied.message, /user "bob" may not pull xing\/app of upstream harbor: no auth.rules entry allows it/);
  await rejectsWith(access.base(undefined, undefined), 'UNAUTHORIZED', 401);
  await access.base(basic('bob', 'pw-b'), undefined);
  await rejectsWith(access.base(basic('bob', 'x'), undefined), 'UNAUTHORIZED', 401);
  const visible = await access.catalogFilter(undefined, target);
  assert.deepEqual(['public/base', 'xing/app'].filter(visible!), ['public/base']);
});

test('htpasswd without rules: every user may do everything, anonymous nothing; no auth at all: everything open', async () => {
  const path = join(dir, 'users2');
  writeFileSync(path, `alice:${hash('pw-a')}\n`);
  const { pull } = setup({ htpasswd: { realm: 'berth', path } });
  assert.equal(await pull(basic('alice', 'pw-a'), 'any/thing'), 'alice');
  await rejectsWith(pull(undefined, 'any/thing'), 'UNAUTHORIZED', 401);
  const open = setup(undefined);
  assert.equal(open.access.open, true);
  assert.equal(await open.pull(basic('who', 'ever'), 'x'), undefined);
  await open.access.base(undefined, undefined);
});
