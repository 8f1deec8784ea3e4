/** @module auth/bcrypt-pool.test — the worker pool verifies hashes correctly and bounds its queue. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import bcrypt from 'bcryptjs';
import { OciError } from '../oci/errors.js';
import { BcryptPool } from './bcrypt-pool.js';

test('bcrypt pool: matches and mismatches, $2y$ as htpasswd writes it, and a bounded queue', async () => {
  const pool = new BcryptPool({ size: 1, queued: 2 });
  try {
    const hash = bcrypt.hashSync('pw', 4);
    assert.equal(await pool.compare('pw', hash), true);
    assert.equal(await pool.compare('nope', hash), false);
    assert.equal(await pool.compare('pw', hash.replace(/^\$2b\$/, '$2y$')), true);
    assert.equal(await pool.compare('pw', 'not a hash'), false);
    const slow = bcrypt.hashSync('pw', 8);
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map(() => pool.compare('pw', slow)));
    // One running, two queued: the other two are refused at once.
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected'],
    );
    for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof OciError && r.reason.code === 'TOOMANYREQUESTS');
  } finally {
    await pool.close();
  }
});
