/** @module upstream/challenge.test — challenge parsing, which token realms may see credentials, what a token grants. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChallenge, realmAllowed, registrableDomain } from './challenge.js';
import { grantedActions } from './passthrough.js';

test('bearer and basic challenges parse with quoted and bare values', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:a/b:pull' },
  });
  assert.deepEqual(parseChallenge(['Basic realm=edge']), { scheme: 'basic', params: { realm: 'edge' } });
  assert.equal(parseChallenge(undefined), undefined);
});

test('token realms: same registrable domain, or listed by host or host:port; anything else refused', () => {
  assert.equal(registrableDomain('registry-1.docker.io'), 'docker.io');
  assert.equal(registrableDomain('harbor.xing.co.uk'), 'xing.co.uk');
  assert.ok(realmAllowed('https://registry-1.docker.io', 'https://auth.docker.io/token'));
  assert.ok(realmAllowed('https://harbor.xing.com', 'https://harbor.xing.com/service/token'));
  assert.ok(!realmAllowed('https://harbor.xing.com', 'https://evil.example/token'));
  assert.ok(!realmAllowed('https://harbor.xing.com', 'https://xing.com.evil.example/token'));
  assert.ok(!realmAllowed('http://127.0.0.1:5000', 'http://localhost:5001/token'), 'another host name for the same machine');
  assert.ok(realmAllowed('http://127.0.0.1:5000', 'http://localhost:5001/token', ['localhost']));
  assert.ok(realmAllowed('https://ghcr.io', 'https://login.example.net:8443/t', ['login.example.net:8443']));
  assert.ok(!realmAllowed('https://ghcr.io', 'https://login.example.net:9443/t', ['login.example.net:8443']), 'the listed port only');
  assert.ok(!realmAllowed('https://ghcr.io', 'file:///etc/passwd', ['']));
});

test('what a registry JWT grants on one repository; opaque tokens grant nothing', () => {
  const jwt = (claims: unknown) => `h.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.s`;
  const token = jwt({
    access: [
      { type: 'repository', name: 'xing/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'other', actions: ['*'] },
    ],
  });
  assert.deepEqual(grantedActions(token, 'xing/app'), ['pull', 'push']);
  assert.deepEqual(grantedActions(token, 'xing'), []);
  assert.deepEqual(grantedActions('opaque-token', 'xing/app'), []);
  assert.deepEqual(grantedActions('a.%%%.b', 'xing/app'), []);
});
