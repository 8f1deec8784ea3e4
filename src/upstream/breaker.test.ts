/** @module upstream/breaker.test — the breaker opens after the threshold and logs each transition once, with the upstream named once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { CircuitBreaker } from './breaker.js';

test('one line per transition; the upstream key comes from the child logger only', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const logger = pino({}, sink).child({ upstream: 'harbor' });
  let now = 0;
  const breaker = new CircuitBreaker({ name: 'harbor', threshold: 3, probeIntervalMs: 60_000, probe: async () => false, logger, now: () => now });
  for (let i = 0; i < 5; i++) breaker.failure('ECONNREFUSED');
  assert.equal(breaker.state, 'down');
  now = 2_000;
  breaker.success();
  breaker.stop();
  assert.equal(lines.length, 2, lines.join(''));
  for (const l of lines) assert.equal(l.match(/"upstream":/g)?.length, 1, l);
});
