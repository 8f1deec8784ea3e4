/** @module util/malloc-trim.test — malloc_trim binds on Linux (glibc) and is absent elsewhere. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadMallocTrim } from './malloc-trim.js';

/** glibc's version on glibc Linux; undefined on musl and elsewhere. */
const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;

test('on Linux with glibc malloc_trim binds and runs', { skip: !glibc && 'not glibc' }, async () => {
  const trim = await loadMallocTrim();
  assert.equal(typeof trim, 'function');
  trim?.();
});

test('elsewhere there is nothing to trim', async () => {
  assert.equal(await loadMallocTrim('darwin'), undefined);
});
