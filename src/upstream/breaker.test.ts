/** @module upstream/breaker.test — the breaker opens after the threshold (at once when no connection could be made) and logs each transition once. */
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

test('no connection at all opens at once and probes at once; answered failures need the threshold', async () => {
  const logger = pino({ level: 'silent' });
  let probes = 0;
  let up = false;
  const breaker = new CircuitBreaker({
    name: 'harbor',
    threshold: 3,
    probeIntervalMs: 60_000,
    probe: async () => {
      probes++;
      return up;
    },
    logger,
    now: Date.now,
  });
  try {
    breaker.failure('answered 500');
    breaker.failure('answered 500');
    assert.equal(breaker.state, 'up', 'two answered failures are not an outage');
    breaker.success();
    breaker.failure('UND_ERR_CONNECT_TIMEOUT (Connect Timeout Error)', false, true);
    assert.equal(breaker.state, 'down', 'one connect failure opens it');
    assert.match(breaker.refusal() ?? '', /unreachable.*UND_ERR_CONNECT_TIMEOUT/);
    up = true;
    // The first probe runs at once, not after the 60 s interval.
    for (let i = 0; i < 100 && breaker.state === 'down'; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(probes, 1);
    assert.equal(breaker.state, 'up');
  } finally {
    breaker.stop();
  }
});

test('a connect failure of a request begun before the upstream last answered only counts; failed probes count too', async () => {
  let now = 1_000;
  let probes = 0;
  const breaker = new CircuitBreaker({
    name: 'harbor',
    threshold: 3,
    probeIntervalMs: 60_000,
    probe: async () => {
      probes++;
      return false;
    },
    logger: pino({ level: 'silent' }),
    now: () => now,
  });
  try {
    // Begun at 900, the upstream answered at 1,000 (here or in another worker): old news.
    breaker.success(true);
    now = 4_000;
    breaker.failure('UND_ERR_CONNECT_TIMEOUT (Connect Timeout Error)', true, true, 900);
    assert.equal(breaker.state, 'up', 'a connect that timed out across the recovery does not open it');
    assert.equal(breaker.status().consecutiveFailures, 1);
    breaker.failure('ECONNREFUSED', false, true, 4_000);
    assert.equal(breaker.state, 'down', 'a fresh one does');
    for (let i = 0; i < 100 && probes === 0; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(probes, 1);
    assert.equal(breaker.status().consecutiveFailures, 3, 'two requests and the failed probe');
  } finally {
    breaker.stop();
  }
});

test("a process's first success is told to the others (one that opened while this one started never heard of it otherwise)", () => {
  const told: string[] = [];
  const breaker = new CircuitBreaker({
    name: 'harbor',
    threshold: 3,
    probeIntervalMs: 60_000,
    probe: async () => false,
    logger: pino({ level: 'silent' }),
    now: Date.now,
  });
  breaker.onLocal = (event) => told.push(event);
  breaker.success();
  breaker.success();
  assert.deepEqual(told, ['success'], 'the first success only, then only after failures');
  breaker.failure('answered 500');
  breaker.success();
  assert.deepEqual(told, ['success', 'failure', 'success']);
  breaker.stop();
});
