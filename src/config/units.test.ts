/** @module config/units.test — sizes, durations and listen addresses. */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseSize } from './units.js';
import { parseListenAddr } from './fields.js';

test('parseSize: decimal and binary units, case-insensitive, plain numbers', () => {
  assert.equal(parseSize('10GiB'), 10 * 2 ** 30);
  assert.equal(parseSize('500MB'), 500_000_000);
  assert.equal(parseSize('500mb'), 500_000_000);
  assert.equal(parseSize('1024'), 1024);
  assert.equal(parseSize(4096), 4096);
  assert.equal(parseSize('1.5KiB'), 1536);
  assert.equal(parseSize('2 TB'), 2e12);
  assert.equal(parseSize('7B'), 7);
  assert.equal(parseSize('0'), 0);
});

test('parseSize: rejects junk with the value and what is allowed', () => {
  for (const bad of ['10XB', '', 'GiB', '-1', '1e3', '10 Gi B']) {
    assert.throws(
      () => parseSize(bad),
      (err: Error) => {
        assert.match(err.message, new RegExp(`invalid size ${JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
        assert.match(err.message, /allowed: .*KiB.*e\.g\. 50GiB/);
        return true;
      },
    );
  }
  assert.throws(() => parseSize(-5), /invalid size -5/);
  assert.throws(() => parseSize(1.5), /invalid size 1.5/);
  assert.throws(() => parseSize('99999999PiB'), /too large/);
});

test('parseDuration: Go-style strings to milliseconds', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('15m'), 900_000);
  assert.equal(parseDuration('168h'), 168 * 3_600_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('1500us'), 1.5);
  assert.equal(parseDuration('2000000ns'), 2);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('+5s'), 5000);
});

test('parseDuration: a number is nanoseconds, as distribution reads a bare YAML integer', () => {
  assert.equal(parseDuration(10_000_000_000), 10_000);
  assert.equal(parseDuration(0), 0);
});

test('parseDuration: rejects junk, missing units and negatives', () => {
  for (const bad of ['5 minutes', '60', '1h 30m', 'h', '', '1d', '10S']) {
    assert.throws(
      () => parseDuration(bad),
      (err: Error) => {
        assert.ok(err.message.startsWith(`invalid duration ${JSON.stringify(bad)}`), err.message);
        assert.match(err.message, /allowed: .*90s, 15m, 168h/);
        return true;
      },
    );
  }
  assert.throws(() => parseDuration('60'), /missing unit/);
  assert.throws(() => parseDuration('-5s'), /must not be negative/);
  assert.throws(() => parseDuration(-1), /invalid duration -1/);
});

test('parseListenAddr: the forms Go accepts, plus a bare port', () => {
  assert.deepEqual(parseListenAddr(':5000'), { host: '', port: 5000 });
  assert.deepEqual(parseListenAddr('0.0.0.0:5000'), { host: '0.0.0.0', port: 5000 });
  assert.deepEqual(parseListenAddr('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  assert.deepEqual(parseListenAddr('[::1]:5000'), { host: '::1', port: 5000 });
  assert.deepEqual(parseListenAddr('[::]:80'), { host: '::', port: 80 });
  assert.deepEqual(parseListenAddr('localhost:5000'), { host: 'localhost', port: 5000 });
  assert.deepEqual(parseListenAddr('5000'), { host: '', port: 5000 });
  for (const bad of ['localhost', ':99999', '::1:5000', 'a b:5', '[x]:5', ':', 'host:port']) {
    assert.throws(() => parseListenAddr(bad), /invalid address .*allowed: \[host\]:port/, bad);
  }
});
