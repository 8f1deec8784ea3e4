/** @module auth/token-service.test — berth's own bearer tokens: issue and check, grants from the rules, expiry, tampering, the key file. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { pino } from 'pino';
import type { BerthConfig, UpstreamConfig } from '../config/types.js';
import type { Target, Upstream } from '../upstream/target.js';
import { OciError } from '../oci/errors.js';
import { AccessControl } from './access.js';
import { TokenService, covers, parseScopes } from './token-service.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-token-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const logger = pino({ level: 'silent' });
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

test('scopes: repository names may hold a colon (host:port); several scopes per value or parameter; malformed ones dropped', () => {
  assert.deepEqual(parseScopes(['repository:xing/app:pull,push', 'repository:localhost:5000/a/b:pull registry:catalog:*', 'nonsense', 'repository:x:']), [
    { type: 'repository', name: 'xing/app', actions: ['pull', 'push'] },
    { type: 'repository', name: 'localhost:5000/a/b', actions: ['pull'] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
  ]);
});

test('tokens: issued and checked with a generated key (0600, one per root directory); expiry, audience and tampering refused', async () => {
  let t = 1_700_000_000_000;
  const keyFile = join(dir, 'root', 'token.key');
  const svc = new TokenService({ service: 'berth', expirationMs: 5 * 60_000, keyFile, generate: true, now: () => t });
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const pem = readFileSync(keyFile, 'utf8');
  const issued = await svc.issue('alice', [{ type: 'repository', name: 'xing/app', actions: ['pull'] }]);
  assert.equal(issued.token, issued.access_token);
  assert.equal(issued.expires_in, 300);
  assert.equal(issued.issued_at, new Date(t).toISOString());
  const claims = await svc.verify(issued.token);
  assert.equal(claims?.user, 'alice');
  assert.ok(claims && covers(claims.access, 'xing/app', 'pull'));
  assert.ok(claims && !covers(claims.access, 'xing/app', 'push'));
  assert.ok(claims && !covers(claims.access, 'xing/other', 'pull'));

  const again = new TokenService({ service: 'berth', expirationMs: 60_000, keyFile, generate: true, now: () => t });
  assert.equal(readFileSync(keyFile, 'utf8'), pem, 'a second start (or worker) reuses the key');
  assert.equal((await again.verify(issued.token))?.user, 'alice', 'workers sharing the key accept each other’s tokens');

  const [h, p, s] = issued.token.split('.') as [string, string, string];
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'root' })).toString('base64url');
  assert.equal(await svc.verify(`${h}.${forged}.${s}`), undefined, 'a changed payload fails the signature');
  assert.equal(await svc.verify(`${h}.${p}.${s.slice(0, -4)}AAAA`), undefined);
  const other = new TokenService({ service: 'other', expirationMs: 60_000, keyFile, generate: true, now: () => t });
  assert.equal(await other.verify(issued.token), undefined, 'another audience');
  const stranger = new TokenService({ service: 'berth', expirationMs: 60_000, keyFile: join(dir, 'k2', 'token.key'), generate: true, now: () => t });
  assert.equal(await stranger.verify(issued.token), undefined, 'another key');

  t += 5 * 60_000 + 1_000;
  assert.equal(await svc.verify(issued.token), undefined, 'expired');
});

test('tokens: a configured RSA key signs RS256; a missing configured key is an error, not a new key', async () => {
  const keyFile = join(dir, 'rsa.pem');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const svc = new TokenService({ service: 'berth', expirationMs: 60_000, keyFile, generate: false, now: Date.now });
  const { token } = await svc.issue(undefined, []);
  assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).alg, 'RS256');
  assert.equal((await svc.verify(token))?.user, undefined);
  assert.throws(() => new TokenService({ service: 'berth', expirationMs: 60_000, keyFile: join(dir, 'absent.pem'), generate: false, now: Date.now }), /ENOENT/);
});

function setup() {
  const path = join(dir, 'users');
  writeFileSync(path, `alice:${bcrypt.hashSync('pw-a', 4)}\nbob:${bcrypt.hashSync('pw-b', 4)}\n`);
  const upstreamConfig = { name: 'harbor', passthrough: undefined } as unknown as UpstreamConfig;
  const upstream = { config: upstreamConfig, client: {} } as unknown as Upstream;
  const config = {
    auth: {
      htpasswd: { realm: 'berth', path },
      rules: [
        { users: ['anonymous'], repositories: ['*'], actions: ['pull'] },
        { users: ['alice'], repositories: ['xing/*'], actions: ['pull', 'push'] },
      ],
      token: { service: 'berth', expirationMs: 300_000, key: join(dir, 'access', 'token.key'), generated: true },
    },
    upstreams: [upstreamConfig],
  } as unknown as BerthConfig;
  const access = new AccessControl({ config, upstreams: [upstream], logger, now: Date.now });
  const target = (repository: string): Target => ({ upstream, key: 'harbor', repository });
  const ask = (authorization: string | undefined, action: 'pull' | 'push', repository: string) =>
    access.authorize(authorization, { target: target(repository), action, probe: { method: 'HEAD', path: 'manifests/v1' }, name: repository });
  return { access, target, ask };
}

async function rejects(p: Promise<unknown>, status: number): Promise<OciError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof OciError);
    assert.equal(err.status, status);
    return err;
  }
  return assert.fail(`expected ${status}`);
}

test('access with tokens: anonymous gets pull only, a user what the rules grant, wrong credentials no token at all', async () => {
  const { access, target, ask } = setup();
  try {
    const scopes = parseScopes(['repository:xing/app:pull,push']);
    const anon = await access.issueToken(undefined, scopes, target);
    const anonBearer = `Bearer ${anon.token}`;
    assert.equal(await ask(anonBearer, 'pull', 'xing/app'), 'anonymous');
    await rejects(ask(anonBearer, 'push', 'xing/app'), 401);
    await rejects(ask(anonBearer, 'pull', 'xing/other'), 401);
    await access.base(anonBearer, undefined);
    await rejects(access.base(undefined, undefined), 401);

    const alice = `Bearer ${(await access.issueToken(basic('alice', 'pw-a'), scopes, target)).token}`;
    assert.equal(await ask(alice, 'push', 'xing/app'), 'alice');
    const bob = `Bearer ${(await access.issueToken(basic('bob', 'pw-b'), scopes, target)).token}`;
    // The anonymous rule is for clients without credentials, as with Basic auth.
    const denied = await rejects(ask(bob, 'push', 'xing/app'), 403);
    assert.match(denied.message, /user "bob" may not push xing\/app/);

    await rejects(access.issueToken(basic('alice', 'wrong'), scopes, target), 401);
    await rejects(access.issueToken(basic('alice', `${'p'.repeat(72)}x`), scopes, target), 401);
    await rejects(ask('Bearer not.a.token', 'pull', 'xing/app'), 401);
    assert.equal(await ask(basic('alice', 'pw-a'), 'push', 'xing/app'), 'alice', 'Basic auth is still accepted');
  } finally {
    await access.close();
  }
});

test('access with tokens: failed logins at the token endpoint count in the backoff (429)', async () => {
  const { access, target } = setup();
  try {
    const client = '10.9.9.9';
    for (let i = 0; i < 5; i++) await rejects(access.issueToken(basic('alice', `wrong-${i}`), [], target, client), 401);
    await rejects(access.issueToken(basic('alice', 'pw-a'), [], target, client), 429);
  } finally {
    await access.close();
  }
});
