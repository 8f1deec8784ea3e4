/** @module e2e/upgrade.test — a store written by berth 0.1.0 opens after the schema upgrade and serves what it held. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { OCI_MANIFEST, call, digestOf } from '../fixtures/oci-http.js';
import { makeTempDir, removeDir } from '../fixtures/proc.js';
import { METADATA_MIGRATIONS } from '../../src/storage/metadata-schema.js';
import { PUSH_MIGRATIONS } from '../../src/storage/push-db.js';

const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/store-0.1.0');
const MANIFEST = 'sha256:ea0f5ceec3e980773c2628005ab7fd226da91b657892f0d7a248f07e81b81d0a';
const LAYER = 'sha256:f77ff8b885a88561dc0edd6f559afa4e970a459096f77dcc94a25604df8b8196';

let work: string;
let root: string;
let berth: Berth;

before(async () => {
  work = await makeTempDir('berth-e2e-upgrade-');
  root = path.join(work, 'data');
  // A copy: the committed fixture stays as 0.1.0 wrote it.
  await cp(FIXTURE, root, { recursive: true, filter: (src) => !src.endsWith('ABOUT.md') });
  berth = await startBerth({ root, config: { version: 0.1 } });
});

after(async () => {
  await berth?.stop();
  await removeDir(work);
});

test('the 0.1.0 store serves its tag, manifest and layer after the upgrade', async () => {
  const m = await call(berth.url, 'GET', '/v2/fixture/app/manifests/v1', { headers: { accept: OCI_MANIFEST } });
  assert.equal(m.status, 200);
  assert.equal(m.header('docker-content-digest'), MANIFEST);
  assert.equal(digestOf(m.body), MANIFEST);
  const layer = await call(berth.url, 'GET', `/v2/fixture/app/blobs/${LAYER}`);
  assert.equal(layer.status, 200);
  assert.equal(digestOf(layer.body), LAYER);
  const tags = await call(berth.url, 'GET', '/v2/fixture/app/tags/list');
  assert.deepEqual(tags.json(), { name: 'fixture/app', tags: ['v1'] });
});

test('both databases carry the newest schema version; push.db gained the owner and lease columns', () => {
  const metadata = new Database(path.join(root, 'metadata.db'), { readonly: true });
  const push = new Database(path.join(root, 'push.db'), { readonly: true });
  try {
    assert.equal(metadata.pragma('user_version', { simple: true }), METADATA_MIGRATIONS.length);
    assert.equal(push.pragma('user_version', { simple: true }), PUSH_MIGRATIONS.length);
    const columns = (push.prepare('PRAGMA table_info(replication_jobs)').all() as Array<{ name: string }>).map((c) => c.name);
    assert.ok(columns.includes('owner') && columns.includes('lease_until'));
  } finally {
    metadata.close();
    push.close();
  }
});
