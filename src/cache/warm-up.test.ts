/** @module cache/warm-up.test — warm jobs against a real store: platform choice, pinning, a moved tag, failures; the schedule. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { parsePlatform } from '../oci/platform.js';
import { WarmSchedule } from '../ops/schedule.js';
import { ImageCatalog } from './images.js';
import { RegistryCache } from './registry.js';
import { testStore, type Stored } from './cache-testkit.js';
import { WarmJobs, type WarmRequest } from './warm-up.js';

const logger = pino({ level: 'silent' });
let store: Awaited<ReturnType<typeof testStore>>;
let jobs: WarmJobs;
let first: Stored;
let second: Stored;

async function platformIndex(seed: string): Promise<Stored> {
  const entries = [];
  for (const [architecture, variant] of [['amd64'], ['arm64', 'v8'], ['arm', 'v7']] as const) {
    const platform = { os: 'linux', architecture, ...(variant ? { variant } : {}) };
    const m = await store.manifest('x/app', { ...platform, seed }, [await store.put(`${seed} ${architecture} layer`)]);
    entries.push({ ...m, platform });
  }
  return store.index('x/app', entries);
}

before(async () => {
  store = await testStore();
  const { blobs, metadata } = store;
  const cache = new RegistryCache({
    blobs,
    ...store.ports,
    upstreams: [],
    logger,
    now: Date.now,
    limits: { maxsize: 0, lowwatermark: 0.8, ttlByUpstream: new Map() },
  });
  const resolve = (ref: { repository: string }) => ({ upstream: undefined, key: '', repository: ref.repository });
  const catalog = new ImageCatalog({ blobs, ...store.ports, logger, resolve, inUse: () => false });
  jobs = new WarmJobs({ cache, blobs, ...store.ports, catalog, resolve, logger, now: Date.now });
  first = await platformIndex('first');
  second = await platformIndex('second');
  metadata.setTag('', 'x/app', 'v1', first.digest);
});

after(() => store.remove());

const request = (over: Partial<WarmRequest> = {}): WarmRequest => ({
  images: ['x/app:v1'],
  platforms: [parsePlatform('linux/arm64')],
  pin: false,
  source: 'api',
  ...over,
});

test('an index is resolved to the platforms asked for; content already present is reported as cached', async () => {
  const job = await jobs.run(request({ platforms: [parsePlatform('linux/arm64'), parsePlatform('linux/arm/v7')] }));
  assert.equal(job.state, 'done');
  const img = job.images[0]!;
  assert.equal(img.state, 'cached');
  assert.equal(img.digest, first.digest);
  assert.deepEqual(img.platforms, ['linux/arm64/v8', 'linux/arm/v7']);
  assert.equal(img.blobsTotal, 4, 'config and layer of two platforms');
  assert.equal(img.bytesDone, img.bytesTotal);
  assert.equal(img.bytesFetched, 0);
  assert.equal(jobs.get(job.id), job);
  assert.equal(jobs.list()[0], job);
});

test('a pinned warm-up pins the image; when its tag moves, a scheduled refresh unpins the old content', async () => {
  await jobs.run(request({ pin: true, source: 'schedule', replacePinned: true }));
  assert.ok(store.metadata.isPinned(first.digest));
  store.metadata.setTag('', 'x/app', 'v1', second.digest);
  const job = await jobs.run(request({ pin: true, source: 'schedule', replacePinned: true }));
  assert.equal(job.images[0]!.digest, second.digest);
  assert.ok(store.metadata.isPinned(second.digest));
  assert.ok(!store.metadata.isPinned(first.digest), 'the old digest is left to age out');
});

test('failures name the cause: a platform the index lacks, an unknown tag', async () => {
  const job = await jobs.run(request({ images: ['x/app:v1', 'x/app:nope'], platforms: [parsePlatform('linux/s390x')] }));
  assert.equal(job.state, 'failed');
  assert.match(job.images[0]!.error!, /has no manifest for linux\/s390x; it offers linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7/);
  assert.match(job.images[1]!.error!, /manifest nope is not known in repository x\/app/);
});

test('the warm: schedule runs the list at once, pinned, with the default platform, then on its interval', async () => {
  const seen: WarmRequest[] = [];
  const fake = {
    run: async (r: WarmRequest) => {
      seen.push(r);
      return {} as never;
    },
  } as unknown as WarmJobs;
  const schedule = new WarmSchedule({ intervalMs: 20, images: ['x/app:v1'], platforms: [], allPlatforms: false }, fake, logger);
  schedule.start();
  await new Promise((r) => setTimeout(r, 100));
  schedule.stop();
  assert.ok(seen.length >= 2, `ran ${seen.length} times`);
  assert.deepEqual(seen[0], { images: ['x/app:v1'], platforms: [{ os: 'linux', architecture: 'amd64' }], pin: true, source: 'schedule', replacePinned: true });
  const none = new WarmSchedule({ intervalMs: 20, images: [], platforms: [], allPlatforms: true }, fake, logger);
  none.start();
  none.stop();
});
