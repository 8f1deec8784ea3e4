/** @module cache/images.test — listing, pinning and evicting images against a real store: shared layers stay. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { OciError } from '../oci/errors.js';
import { ImageCatalog } from './images.js';
import { testStore } from './cache-testkit.js';

let store: Awaited<ReturnType<typeof testStore>>;
let catalog: ImageCatalog;
const evictions: Array<[string, number, number]> = [];
let shared: { digest: string };
let index: { digest: string; size: number };

before(async () => {
  store = await testStore();
  const { put, manifest, metadata } = store;
  catalog = new ImageCatalog({
    blobs: store.blobs,
    ...store.ports,
    logger: pino({ level: 'silent' }),
    resolve: (ref) => ({ upstream: undefined, key: '', repository: ref.repository }),
    inUse: () => false,
    observer: { upstreamBytes: () => undefined, evicted: (...e) => void evictions.push(e) },
  });
  const layer = await put('shared layer bytes');
  shared = layer;
  const amd = await manifest('x/app', { os: 'linux', architecture: 'amd64' }, [layer, await put('amd64 layer')]);
  const arm = await manifest('x/app', { os: 'linux', architecture: 'arm64', variant: 'v8' }, [layer, await put('arm64 layer')]);
  index = await store.index('x/app', [
    { ...amd, platform: { os: 'linux', architecture: 'amd64' } },
    { ...arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ]);
  metadata.setTag('', 'x/app', 'v1', index.digest);
  const other = await manifest('x/other', { os: 'linux', architecture: 'amd64', author: 'other' }, [layer]);
  metadata.setTag('', 'x/other', 'v1', other.digest);
});

after(() => store.remove());

test('list: one row per tag with its cached platforms and total size; index children are not listed apart', async () => {
  const rows = await catalog.list();
  assert.deepEqual(
    rows.map((r) => `${r.repository}:${r.tag}`),
    ['x/app:v1', 'x/other:v1'],
  );
  const app = rows[0]!;
  assert.equal(app.digest, index.digest);
  assert.deepEqual(app.platforms, ['linux/amd64', 'linux/arm64/v8']);
  assert.equal(
    app.size,
    [...(await catalog.closure(index.digest))].reduce((n, d) => n + store.sizes.get(d)!, 0),
  );
  assert.equal(app.lastPull, 1_700_000_000_000);
  assert.deepEqual(
    (await catalog.list('other')).map((r) => r.platforms),
    [['linux/amd64']],
  );
});

test('pin covers the whole image; a pinned image cannot be evicted', async () => {
  const { digests } = await catalog.pin('x/app:v1', true);
  assert.equal(digests, 8);
  for (const d of await catalog.closure(index.digest)) assert.ok(store.metadata.isPinned(d));
  await assert.rejects(catalog.lookup('x/app:v2'), (e: unknown) => e instanceof OciError && e.code === 'MANIFEST_UNKNOWN');
  return assert.rejects(catalog.evict('x/app:v1'), (e: unknown) => e instanceof OciError && e.status === 409);
});

test('evict removes the image but keeps a layer another image references', async () => {
  await catalog.pin('x/app:v1', false);
  const all = [...(await catalog.closure(index.digest))];
  const expected = all.filter((d) => d !== shared.digest).reduce((n, d) => n + store.sizes.get(d)!, 0);
  const r = await catalog.evict(`x/app@${index.digest}`);
  assert.equal(r.evicted, all.length - 1);
  assert.equal(r.freedBytes, expected);
  assert.deepEqual(evictions.at(-1), ['admin', all.length - 1, expected]);
  assert.ok(await store.blobs.size(shared.digest));
  for (const d of all.filter((x) => x !== shared.digest)) assert.equal(await store.blobs.size(d), undefined);
  assert.deepEqual(
    (await catalog.list()).map((x) => x.repository),
    ['x/other'],
  );
});
