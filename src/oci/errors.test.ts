/** @module oci/errors.test — every error code is documented, every documented code exists; the transient predicate and the catalogue's constructors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ADMIN_ERROR_CODES, ERROR_CODES, MAX_MANIFEST_BYTES, OciError, isTransient, manifestTooLarge, UpstreamClosedError } from './errors.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const read = (p: string) => readFileSync(`${root}${p}`, 'utf8');

function section(text: string, heading: string): string {
  const start = text.indexOf(heading);
  assert.ok(start >= 0, `${heading} is in the document`);
  const end = text.indexOf('\n## ', start + heading.length);
  return text.slice(start, end < 0 ? undefined : end);
}

test('docs/troubleshooting.md documents every OCI error code, and no code the catalogue lacks', () => {
  const errors = section(read('docs/troubleshooting.md'), '## Errors');
  const documented = [...errors.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]!);
  assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
});

test('docs/admin-api.md documents every admin API code, and no code the catalogue lacks', () => {
  const doc = read('docs/admin-api.md');
  const line = /Codes: ([\s\S]*?), and the OCI codes/.exec(doc);
  assert.ok(line, 'the admin API doc has its Codes: list');
  const documented = [...line[1]!.matchAll(/`([A-Z_]+)` \((\d+)/g)].map((m) => [m[1]!, Number(m[2])] as const);
  assert.deepEqual(documented.map(([c]) => c).sort(), Object.keys(ADMIN_ERROR_CODES).sort());
  for (const [code, status] of documented) assert.equal(ADMIN_ERROR_CODES[code as keyof typeof ADMIN_ERROR_CODES].status, status, code);
});

test('one transient predicate: the upstream failing or the network, not refusals', () => {
  assert.ok(isTransient(new OciError('UNAVAILABLE')));
  assert.ok(isTransient(new OciError('TOOMANYREQUESTS')));
  assert.ok(!isTransient(new OciError('DENIED')));
  assert.ok(!isTransient(new OciError('DIGEST_INVALID')));
  for (const code of ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'EAI_AGAIN', 'UND_ERR_SOCKET'])
    assert.ok(isTransient(Object.assign(new Error('x'), { code })), code);
  assert.ok(isTransient(Object.assign(new Error('short'), { transient: true })));
  // berth's own pool, closed because it is stopping: a retry would only fail again (and keep a stopping process alive).
  for (const code of ['UND_ERR_DESTROYED', 'UND_ERR_CLOSED']) assert.ok(!isTransient(Object.assign(new Error('x'), { code })), code);
  const closed = new UpstreamClosedError('default');
  assert.equal(closed.code, 'UNAVAILABLE');
  assert.ok(!isTransient(closed));
  assert.ok(!isTransient(new Error('plain')));
  assert.ok(!isTransient(undefined));
});

test('one answer for an oversized manifest: 413 MANIFEST_INVALID with the limit', () => {
  const e = manifestTooLarge(MAX_MANIFEST_BYTES + 1);
  assert.equal(e.code, 'MANIFEST_INVALID');
  assert.equal(e.status, 413);
  assert.deepEqual(e.detail, { limit: MAX_MANIFEST_BYTES });
});

test('a full disk, whoever says it (the file system, a quota, SQLite), is 507 UNAVAILABLE; other errors stay 500 UNKNOWN', async () => {
  const { isDiskFull, toOciError } = await import('./errors.js');
  for (const code of ['ENOSPC', 'EDQUOT', 'SQLITE_FULL', 'SQLITE_IOERR_SHMSIZE']) {
    const err = Object.assign(new Error('no space'), { code });
    assert.equal(isDiskFull(err), true, code);
    const oci = toOciError(err);
    assert.equal(oci.status, 507, code);
    assert.equal(oci.code, 'UNAVAILABLE');
    assert.match(oci.message, /^disk full: .*free space/);
  }
  for (const err of [new Error('boom'), Object.assign(new Error('io'), { code: 'EIO' }), undefined, 'text']) {
    assert.equal(isDiskFull(err), false);
    assert.equal(toOciError(err).status, 500);
  }
  const refusal = new OciError('DENIED');
  assert.equal(toOciError(refusal), refusal);
});
