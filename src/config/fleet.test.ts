/** @module config/fleet.test — the hub:, site:, ratelimit and backgroundwindow keys. */

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configKit, problemsOf } from './testkit.js';
import { parseRate, parseWindow } from './fleet.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-fleet-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const { load } = configKit(dir);

test('hub and site load as docs/fleet.md writes them (docs/design.md §12); tokenfile is read and trimmed', () => {
  const { config } = load('hub:\n  token: s3cret\nsite:\n  name: factory-12\n  hub: https://berth-hub.xing.com/\n  tokenfile: hub.token\n  interval: 10s\n', {
    files: { 'hub.token': 'abc\n' },
  });
  assert.deepEqual(config.hub, { token: 's3cret', admission: { maxInFlight: 256, maxLoopDelayMs: 100 }, leaseTtlMs: 5_000 });
  assert.deepEqual(config.site, { name: 'factory-12', hub: 'https://berth-hub.xing.com', token: 'abc', intervalMs: 10_000 });
  const { config: plain } = load('site:\n  name: s1\n  hub: http://hub:5000\n  token: t\n');
  assert.equal(plain.site?.intervalMs, 30_000);
});

test('a hub with redis: keeps its state there and needs advertise; advertise without redis: is refused', () => {
  const { config, warnings } = load('hub:\n  token: s3cret\n  advertise: http://10.0.0.7:5000/\nredis:\n  addr: 10.0.0.9:6379\n  db: 3\n');
  assert.equal(config.hub?.advertise, 'http://10.0.0.7:5000');
  assert.deepEqual(config.hub?.redis?.addrs, [{ host: '10.0.0.9', port: 6379 }]);
  assert.equal(config.hub?.redis?.db, 3);
  assert.ok(!warnings.some((w) => w.startsWith('redis:')), warnings.join('; '));
  assert.deepEqual(
    problemsOf(() => load('hub:\n  token: s3cret\nredis:\n  addr: 10.0.0.9:6379\n')),
    ['hub.advertise: required with redis: (the other hubs forward to this one while it leads); allowed: an http(s) URL'],
  );
  assert.deepEqual(
    problemsOf(() => load('hub:\n  token: s3cret\n  advertise: http://a:5000\n')),
    ['hub.advertise: set without redis:; allowed: only with redis: (the hubs sharing it forward to the lead)'],
  );
});

test('hub admission bounds and the lead lease TTL are configurable; bad values name the key and what is allowed', () => {
  const { config } = load('hub:\n  token: s3cret\n  admission:\n    inflight: 64\n    loopdelay: 250ms\n');
  assert.deepEqual(config.hub?.admission, { maxInFlight: 64, maxLoopDelayMs: 250 });
  const { config: replicated } = load('hub:\n  token: s3cret\n  advertise: http://10.0.0.7:5000\n  leasettl: 10s\nredis:\n  addr: 10.0.0.9:6379\n');
  assert.equal(replicated.hub?.leaseTtlMs, 10_000);
  assert.deepEqual(
    problemsOf(() => load('hub:\n  token: s3cret\n  admission:\n    inflight: 0\n')),
    ['hub.admission.inflight: invalid count "0"; allowed: a whole number of at least 1, e.g. 256'],
  );
  assert.deepEqual(
    problemsOf(() => load('hub:\n  token: s3cret\n  admission:\n    loopdelay: 0s\n')),
    ['hub.admission.loopdelay: must be more than 0; allowed: a duration such as 100ms'],
  );
  assert.deepEqual(
    problemsOf(() => load('hub:\n  token: s3cret\n  advertise: http://a:5000\n  leasettl: 500ms\nredis:\n  addr: a:6379\n')),
    ['hub.leasettl: 500ms is too short; allowed: a duration of at least 1s (the lead renews its lease every fifth of it), e.g. 5s'],
  );
  assert.deepEqual(
    problemsOf(() => load('hub:\n  token: s3cret\n  leasettl: 10s\n')),
    ['hub.leasettl: set without redis:; allowed: only with redis: (the lease decides which hub on it leads)'],
  );
  assert.deepEqual(
    problemsOf(() => load('hub:\n  token: s3cret\n  admission:\n    queue: 5\n')),
    ['hub.admission.queue: unknown key; allowed here: inflight, loopdelay'],
  );
});

test('fleet problems name the key path', () => {
  assert.deepEqual(
    problemsOf(() => load('hub:\n  tokn: x\n')),
    [
      'hub.tokn: unknown key; allowed here: token, tokenfile, advertise, admission, leasettl',
      'hub.token: required when hub is set; allowed: token or tokenfile',
    ],
  );
  const problems = problemsOf(() => load('site:\n  name: Factory 12\n  hub: ftp://x\n  token: a\n  tokenfile: b\n  interval: soon\n'));
  assert.ok(
    problems.some((p) => p.startsWith('site.name: invalid name "Factory 12"')),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) => p.startsWith('site.hub: invalid URL "ftp://x"')),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) => p.startsWith('site.interval: invalid duration "soon"')),
    problems.join('\n'),
  );
  assert.ok(problems.includes('site.tokenfile: token and tokenfile are both set; allowed: one of them'), problems.join('\n'));
  assert.deepEqual(
    problemsOf(() => load('site:\n  hub: http://h\n  token: a\n')),
    ['site.name: required key is missing'],
  );
  assert.deepEqual(
    problemsOf(() => load('hub:\n  tokenfile: missing.token\n')),
    ['hub.tokenfile: cannot read file "missing.token": no such file'],
  );
});

test('ratelimit and backgroundwindow on proxy and upstreams', () => {
  const { config } = load('proxy:\n  remoteurl: https://h\n  ratelimit: 4MB/s\n  backgroundwindow: 01:00-05:00\n');
  assert.equal(config.upstreams[0]!.ratelimit, 4_000_000);
  assert.deepEqual(config.upstreams[0]!.backgroundwindow, { startMin: 60, endMin: 300, text: '01:00-05:00' });
  assert.deepEqual(
    problemsOf(() => load('upstreams:\n  - name: a\n    remoteurl: https://h\n    ratelimit: fast\n    backgroundwindow: 5-6\n')),
    [
      'upstreams[0].ratelimit: invalid rate "fast"; allowed: a rate: a size per second such as 4MB/s or 500KiB/s (size: a byte count or a number with a unit B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. 50GiB)',
      'upstreams[0].backgroundwindow: invalid window "5-6"; allowed: a daily window HH:MM-HH:MM in local time, e.g. 01:00-05:00 (it may cross midnight: 22:00-06:00)',
    ],
  );
  assert.deepEqual(
    problemsOf(() => load('proxy:\n  remoteurl: https://h\n  ratelimit: [4MB/s]\n  backgroundwindow: {a: 1}\n')),
    ['proxy.ratelimit: invalid value: a list; allowed: a single value', 'proxy.backgroundwindow: invalid value: a mapping; allowed: a single value'],
  );
  assert.equal(parseRate('500KiB/s'), 512_000);
  assert.equal(parseRate('1 MB/sec'), 1_000_000);
  assert.throws(() => parseRate('4MB'));
  assert.deepEqual(parseWindow('22:00-06:00'), { startMin: 1320, endMin: 360, text: '22:00-06:00' });
});
