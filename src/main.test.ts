/** @module main.test — the exit status of a failed command follows the error's type, never its message. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failureExit, main } from './main.js';
import { ConfigError } from './config/load.js';
import { CertUsageError } from './cli/cert.js';
import { NodeConfigError } from './nodeconfig/generate.js';
import { EXIT, StoreMissingError, UsageError } from './oci/errors.js';

test('every usage error is a UsageError: exit 2, printed under its command', () => {
  const cases: Array<[UsageError, string]> = [
    [
      new ConfigError(['proxy.remoteurl: not a URL', 'http.addr: missing port']),
      'berth: invalid configuration:\nproxy.remoteurl: not a URL\nhttp.addr: missing port\n',
    ],
    [new CertUsageError('name at least one --host or --ip'), 'berth cert generate: name at least one --host or --ip\n'],
    [new NodeConfigError('--mirror "x" is not a URL'), 'berth node-config: --mirror "x" is not a URL\n'],
    [new StoreMissingError('no berth store at /x'), 'berth: no berth store at /x\n'],
  ];
  for (const [err, printed] of cases) {
    assert.ok(err instanceof UsageError, err.name);
    let text = '';
    assert.equal(
      failureExit(err, (t) => (text += t)),
      EXIT.USAGE,
      err.name,
    );
    assert.equal(text, printed);
  }
});

test('the message plays no part: a plain error saying "invalid configuration" is not a usage error', () => {
  const err = new Error('invalid configuration: looks like one');
  assert.throws(
    () => failureExit(err, () => undefined),
    (e) => e === err,
  );
});

test('main answers 2 for a bad config file and for cert generate without names', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-main-'));
  const stderr = process.stderr.write.bind(process.stderr);
  let printed = '';
  process.stderr.write = (chunk: string | Uint8Array) => {
    printed += String(chunk);
    return true;
  };
  try {
    assert.equal(await main(['config', 'check', join(dir, 'absent.yml')], {}), EXIT.USAGE);
    assert.match(printed, /^berth: invalid configuration:\n.*absent\.yml: cannot read the config file/);
    printed = '';
    assert.equal(await main(['cert', 'generate', '--out', join(dir, 'tls')], {}), EXIT.USAGE);
    assert.match(printed, /^berth cert generate: name at least one --host or --ip/);
  } finally {
    process.stderr.write = stderr;
    rmSync(dir, { recursive: true, force: true });
  }
});
