/** @module upstream/trust.test — which network errors are outages, which trust problem is a loop, each fix, and the status line clients print. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classify, describeTrustProblem } from './trust.js';
import { pinnedLookup } from './connection-pool.js';
import { reasonPhrase } from '../http/respond.js';
import { isOwnRequest, loopMessage } from './loop.js';
import type { UpstreamConfig } from '../config/types.js';
import type { PeerCertificate } from 'node:tls';

test('trust and configuration errors are not outages', () => {
  const wrapped = (code: string) => Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error(code), { code }) });
  assert.equal(classify(wrapped('DEPTH_ZERO_SELF_SIGNED_CERT')), 'trust');
  assert.equal(classify(wrapped('ERR_TLS_CERT_ALTNAME_INVALID')), 'trust');
  assert.equal(classify(wrapped('ENOTFOUND')), 'config');
  assert.equal(classify(wrapped('ECONNREFUSED')), 'outage');
  assert.equal(classify(wrapped('UND_ERR_HEADERS_TIMEOUT')), 'outage');
  assert.equal(classify(new Error('no code')), 'outage');
});

test('the reason phrase carries the message on one printable line', () => {
  assert.equal(reasonPhrase(502, 'upstream x: not trusted\nfix: set ca'), 'Bad Gateway: upstream x: not trusted fix: set ca');
  assert.ok(reasonPhrase(503, 'é'.repeat(10) + 'x'.repeat(500)).length <= 'Service Unavailable: '.length + 400);
});

test('resolve: answers for the remoteurl host only, in both lookup forms', async () => {
  const lookup = pinnedLookup('Harbor.Xing.com', '10.0.0.7');
  const one = await new Promise((r) => lookup('harbor.xing.com', {}, (_e, a, f) => r([a, f])));
  assert.deepEqual(one, ['10.0.0.7', 4]);
  const all = await new Promise((r) => lookup('harbor.xing.com', { all: true }, (_e, a) => r(a)));
  assert.deepEqual(all, [{ address: '10.0.0.7', family: 4 }]);
  const other = await new Promise((r) => lookup('localhost', {}, (e, a) => r(e ? 'error' : a)));
  assert.notEqual(other, '10.0.0.7');
});

test('a request this berth sent is recognised by its instance id', () => {
  assert.ok(isOwnRequest('a, b', 'b'));
  assert.ok(!isOwnRequest(undefined, 'b'));
  assert.ok(!isOwnRequest(['c'], 'b'));
});

const upstream = (remoteurl: string, more: Partial<UpstreamConfig> = {}) => ({ name: 'default', remoteurl, ...more }) as UpstreamConfig;
const certificate = (subject: Record<string, string>, issuer: Record<string, string>, subjectaltname?: string) =>
  ({ subject, issuer, subjectaltname, valid_to: 'Dec  7 00:00:00 2027 GMT' }) as unknown as PeerCertificate;
const untrusted = Object.assign(new Error('self-signed'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });

test('a long status line loses the middle of its cause, never its fix', () => {
  const fix = 'set proxy.ca to a PEM file holding the CA certificate of issuer CN=Harbor Root CA, O=Xing Platform Team, OU=Registry';
  const message = `upstream default (https://harbor.xing.com): the certificate of harbor.xing.com (subject ${'CN=x, '.repeat(60)}) is not trusted (SELF_SIGNED_CERT_IN_CHAIN); fix: ${fix}`;
  const phrase = reasonPhrase(502, message);
  assert.ok(phrase.endsWith(`; fix: ${fix}`), phrase);
  assert.ok(phrase.startsWith('Bad Gateway: upstream default (https://harbor.xing.com): the certificate'), phrase);
  assert.match(phrase, /\.\.\..*\(SELF_SIGNED_CERT_IN_CHAIN\); fix:/);
  assert.ok(phrase.length <= 'Bad Gateway: '.length + 400, String(phrase.length));
});

test("a certificate of berth's own CA is a loop, said before any ca: advice; other trust problems name one fix", () => {
  const own = describeTrustProblem(upstream('https://harbor.xing.com'), untrusted, certificate({ CN: 'harbor.xing.com' }, { CN: 'berth edge CA', O: 'berth' }));
  assert.equal(own.loop, true);
  assert.match(own.message, /is this berth itself.*issued by berth edge CA/);
  assert.equal(own.fix, "set proxy.resolve to the central registry's real address");
  const harbor = describeTrustProblem(upstream('https://harbor.xing.com'), untrusted, certificate({ CN: 'harbor.xing.com' }, { CN: 'Harbor CA' }));
  assert.equal(harbor.loop, undefined);
  assert.equal(harbor.fix, 'set proxy.ca to a PEM file holding the CA certificate of issuer CN=Harbor CA');
  const ip = describeTrustProblem(
    upstream('https://10.20.0.1'),
    Object.assign(new Error('altname'), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }),
    certificate({ CN: 'harbor.xing.com' }, { CN: 'Harbor CA' }, 'DNS:harbor.xing.com'),
  );
  assert.equal(ip.fix, 'put harbor.xing.com in proxy.remoteurl and set proxy.resolve to 10.20.0.1');
});

test('loop messages: an IP upstream gets remoteurl, a name gets resolve; no hosts-file advice for an IP', () => {
  const ip = loopMessage(upstream('https://10.20.0.1'));
  assert.match(ip, /^upstream default \(https:\/\/10\.20\.0\.1\) is this berth itself: 10\.20\.0\.1 leads back to berth/);
  assert.match(ip, /; fix: set proxy\.remoteurl to the central registry's address, not berth's$/);
  assert.doesNotMatch(ip, /hosts file|resolve/);
  const named = loopMessage(upstream('https://harbor.xing.com', { resolve: '10.20.0.1' }));
  assert.match(named, /harbor\.xing\.com leads to berth through proxy\.resolve 10\.20\.0\.1/);
  assert.equal(named.split('fix:').length, 2, 'one fix');
});
