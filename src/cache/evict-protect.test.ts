/** @module cache/evict-protect.test — the admin API's evict keeps what queued write-behind jobs still need, as size and ttl eviction do. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { OciError } from '../oci/errors.js';
import { ImageCatalog } from './images.js';
import { testStore } from './cache-testkit.js';

let store: Awaited<ReturnType<typeof testStore>>;
const queued = new Set<string>();
let catalog: ImageCatalog;

before(async () => {
  store = await testStore();
  catalog = new ImageCatalog({
    blobs: store.blobs,
    ...store.ports,
    logger: pino({ level: 'silent' }),
    resolve: (ref) => ({ upstream: undefined, key: '', repository: ref.repository }),
    inUse: () => false,
    protected: async () => queued,
  });
});

after(() => store.remove());

test('a layer a queued replication needs survives POST /api/v1/evict of its image', async () => {
  const layer = await store.put('layer waiting for write-behind');
  const other = await store.put('layer already replicated');
  const m = await store.manifest('w/app', { os: 'linux', architecture: 'amd64' }, [layer, other]);
  store.metadata.setTag('', 'w/app', 'v1', m.digest);
  queued.add(layer.digest);
  const r = await catalog.evict('w/app:v1');
  assert.equal(r.digest, m.digest);
  assert.ok((await store.blobs.size(layer.digest)) !== undefined, 'the queued layer is still on disk');
  assert.equal(await store.blobs.size(other.digest), undefined, 'what nothing needs is gone');
  assert.equal(await store.blobs.size(m.digest), undefined);
});

test('an image whose manifest is still queued is refused with 409', async () => {
  const layer = await store.put('another layer');
  const m = await store.manifest('w/queued', { os: 'linux', architecture: 'amd64' }, [layer]);
  store.metadata.setTag('', 'w/queued', 'v1', m.digest);
  queued.add(m.digest);
  await assert.rejects(catalog.evict('w/queued:v1'), (e: unknown) => e instanceof OciError && e.status === 409);
  assert.ok((await store.blobs.size(m.digest)) !== undefined);
});
