/** @module upstream/trust.test — which network errors are outages, and the status line clients print. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classify } from './trust.js';
import { pinnedLookup } from './connection-pool.js';
import { reasonPhrase } from '../http/respond.js';
import { isOwnRequest } from './loop.js';

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
