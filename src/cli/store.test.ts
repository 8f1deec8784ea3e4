/** @module cli/store.test — `berth gc` beside a running berth leaves the blobs it streams, and recent pulls, alone. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import { testStore } from '../cache/cache-testkit.js';
import { InUseRecord, readInUse } from '../storage/in-use.js';
import { runGc } from './store.js';

const DAY = 86_400_000;

test('berth gc skips what a live berth has open (berth.lock) and evicts the rest', async () => {
  const t0 = 1_700_000_000_000;
  const store = await testStore(() => t0);
  try {
    const open = await store.put('layer a running berth is streaming');
    const idle = await store.put('layer nobody uses');
    const m1 = await store.manifest('g/open', { os: 'linux', architecture: 'amd64' }, [open]);
    const m2 = await store.manifest('g/idle', { os: 'linux', architecture: 'amd64' }, [idle]);
    store.metadata.close();
    // The running berth (this test process, alive) records what it streams.
    const record = new InUseRecord(store.dir, () => t0);
    await record.open();
    record.changed([open.digest, m1.digest]);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual([...(readInUse(store.dir)?.inUse ?? [])].sort(), [open.digest, m1.digest].sort());

    const configFile = join(store.dir, 'config.yml');
    writeFileSync(configFile, `version: 0.1\nstorage:\n  maxsize: 100B\n  filesystem:\n    rootdirectory: ${store.dir}\n`);
    const { config } = loadConfig({ file: configFile, env: {}, cwd: store.dir });
    const lines: string[] = [];
    // The store is over its maxsize: least recently used content goes, unless in use.
    assert.equal(await runGc(config, { out: (l) => lines.push(l), now: () => t0 + 2 * DAY }), 0);
    assert.ok((await store.blobs.size(open.digest)) !== undefined, 'the streamed layer stays');
    assert.ok((await store.blobs.size(m1.digest)) !== undefined);
    assert.equal(await store.blobs.size(idle.digest), undefined, 'the idle image is evicted');
    assert.equal(await store.blobs.size(m2.digest), undefined);

    await record.close();
    assert.equal(readInUse(store.dir), undefined, 'a clean stop removes the record');
  } finally {
    await store.remove().catch(() => undefined);
  }
});

test('a berth.lock left by a dead process is ignored', async () => {
  const store = await testStore();
  try {
    writeFileSync(join(store.dir, 'berth.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, updatedAt: 0, inUse: ['sha256:x'] }));
    assert.equal(readInUse(store.dir), undefined);
  } finally {
    await store.remove();
  }
});
