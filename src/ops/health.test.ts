/** @module ops/health.test — readiness follows the store and the metadata, never the upstreams. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkReadiness } from './health.js';

test('ready with a writable store and open metadata, whatever the upstreams; the probe leaves nothing behind', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-ready-'));
  try {
    const r = await checkReadiness({ probeDir: dir, metadataOk: () => true, upstreams: () => [{ name: 'harbor', state: 'down' }] });
    assert.deepEqual(r, { ready: true, store: { writable: true, metadata: true }, upstreams: [{ name: 'harbor', state: 'down' }] });
    assert.deepEqual(await readdir(dir), []);
    const closed = await checkReadiness({ probeDir: dir, metadataOk: () => false, upstreams: () => [] });
    assert.equal(closed.ready, false);
    assert.deepEqual(closed.store, { writable: true, metadata: false });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const gone = await checkReadiness({ probeDir: join(tmpdir(), 'berth-no-such-dir', 'tmp'), metadataOk: () => true, upstreams: () => [] });
  assert.deepEqual(gone.store, { writable: false, metadata: true });
  assert.equal(gone.ready, false);
});
