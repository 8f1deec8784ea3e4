/** @module cache/blob-cache.test — lookups and eviction interleaved step by step: a blob found is served, a blob evicted first is fetched again. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { digestOf } from '../oci/digest.js';
import type { UpstreamConfig } from '../config/types.js';
import type { RegistryClient } from '../upstream/client.js';
import type { StoredBlob } from '../storage/leases.js';
import { BlobCache, type BlobHandle } from './blob-cache.js';
import { Evictor } from './eviction.js';
import type { Target } from '../upstream/target.js';
import { testStore } from './cache-testkit.js';

const logger = pino({ level: 'silent' });
let clock = 1_700_000_000_000;
const now = () => clock;
const removers: Array<() => Promise<void>> = [];
after(async () => {
  for (const r of removers) await r();
});

/** An upstream that has `content` under every digest it is asked for, counting GETs. */
function fakeUpstream(content: Map<string, Buffer>): { target: Target; gets: () => number } {
  let gets = 0;
  const client = {
    name: 'central',
    send: async (req: { method: string; path: string }) => {
      const digest = req.path.replace(/^blobs\//, '');
      const body = content.get(digest);
      if (req.method === 'GET') gets++;
      const stream = Readable.from(req.method === 'GET' && body ? [body] : []);
      return {
        status: body ? 200 : 404,
        headers: body ? { 'content-length': String(body.length) } : {},
        body: Object.assign(stream, {
          dump: async () => {
            stream.resume();
          },
          text: async () => '',
        }),
      };
    },
  } as unknown as RegistryClient;
  const config = { name: 'central' } as unknown as UpstreamConfig;
  return { target: { upstream: { client, config }, key: 'central', repository: 'lib/app' }, gets: () => gets };
}

async function setup() {
  const store = await testStore(now);
  removers.push(store.remove);
  const content = new Map<string, Buffer>();
  const blobs = [randomBytes(200_000), randomBytes(300_000)].map((b) => {
    content.set(digestOf(b), b);
    return b;
  });
  const upstream = fakeUpstream(content);
  const cache = new BlobCache({ blobs: store.blobs, ...store.ports, logger, now });
  // The moment eviction forgets a digest (its file is deleted right after) is the step a test
  // interleaves with: `onForget` runs there, synchronously.
  const hooks: { onForget?: (digest: string) => void } = {};
  const index = Object.assign(Object.create(store.ports.index) as typeof store.ports.index, {
    forget: async (digest: string) => {
      hooks.onForget?.(digest);
      hooks.onForget = undefined;
      await store.ports.index.forget(digest);
    },
  });
  const evictor = new Evictor({
    blobs: store.blobs,
    index,
    logger,
    now,
    limits: { maxsize: 1, lowwatermark: 0.5, ttlByUpstream: new Map() },
    inUse: (d) => cache.isInUse(d),
  });
  const stored = [];
  for (const b of blobs) {
    clock += 1_000; // the first is the least recently used
    const s = await store.put(b);
    store.metadata.linkBlob('central', 'lib/app', s.digest);
    stored.push(s);
  }
  return { store, cache, evictor, hooks, upstream, blobs, digests: stored.map((s) => s.digest) };
}

async function drain(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('an eviction pass that reaches a blob after a pull looked it up leaves it alone, and the pull reads it whole', async () => {
  const { store, cache, evictor, hooks, upstream, blobs, digests } = await setup();
  // The pass plans both blobs, deletes the first, and reaches the second only after the lookup began.
  let pending: Promise<BlobHandle> | undefined;
  hooks.onForget = () => {
    pending = cache.get(upstream.target, digests[1]!);
  };
  const result = await evictor.run('test', 0);
  assert.equal(result.evicted, 1, 'only the blob nobody was reading');
  assert.equal(await store.blobs.size(digests[0]!), undefined);
  const handle = await pending!;
  assert.equal(handle.outcome, 'hit');
  assert.ok((await drain(handle.open())).equals(blobs[1]!));
  await handle.close();
  assert.equal(upstream.gets(), 0);
  assert.equal(cache.isInUse(digests[1]!), false, 'closing the handle gives the blob back to eviction');
  assert.equal((await evictor.run('test', 0)).evicted, 1);
});

test('a pull that looks a blob up while its eviction is under way waits for it and fetches the blob again', async () => {
  const { store, cache, evictor, hooks, upstream, blobs, digests } = await setup();
  // The lookup starts as the pass forgets the first blob, just before deleting its file.
  let pending: Promise<BlobHandle> | undefined;
  hooks.onForget = (d) => {
    pending = cache.get(upstream.target, d);
  };
  await evictor.run('test', 0);
  const handle = await pending!;
  assert.equal(handle.outcome, 'miss');
  assert.ok((await drain(handle.open())).equals(blobs[0]!));
  await handle.close();
  assert.equal(upstream.gets(), 1);
  assert.equal(await store.blobs.size(digests[0]!), blobs[0]!.length, 'stored again');
  assert.equal(store.metadata.blob(digests[0]!)?.size, blobs[0]!.length, 'and recorded: no row without a file, no file without a row');
});

test('a handle keeps serving ranges after its file is deleted underneath it', async () => {
  const { store, cache, upstream, blobs, digests } = await setup();
  const handle = await cache.get(upstream.target, digests[1]!);
  await store.blobs.delete(digests[1]!);
  assert.ok((await drain(handle.open(1_000, 1_999))).equals(blobs[1]!.subarray(1_000, 2_000)));
  assert.ok((await drain(handle.open())).equals(blobs[1]!));
  await handle.close();
  assert.equal(cache.isInUse(digests[1]!), false);
});

test('store readers (manifests, warm-up, replication) get whole content or nothing while eviction runs', async () => {
  const { store, evictor, hooks, blobs, digests } = await setup();
  let opened: Promise<[StoredBlob | undefined, StoredBlob | undefined]> | undefined;
  hooks.onForget = () => {
    opened = Promise.all([store.blobs.open(digests[0]!), store.blobs.open(digests[1]!)]);
  };
  await evictor.run('test', 0);
  const [gone, held] = await opened!;
  assert.equal(gone, undefined, 'the blob being deleted is reported gone');
  assert.ok(held, 'the blob opened before its turn came stays');
  assert.ok((await held.readAll()).equals(blobs[1]!));
  assert.equal(await store.blobs.size(digests[1]!), blobs[1]!.length, 'and left in place');
  await held.close();
  await assert.rejects(store.blobs.readAll(digests[0]!), { code: 'ENOENT' });
});

test('an eviction stopped mid-pass (shutdown) deletes nothing more, and none starts after it', async () => {
  const { store, evictor, hooks, digests } = await setup();
  let stopped: Promise<void> | undefined;
  // The pass deletes the first blob; shutdown begins at that moment.
  hooks.onForget = () => {
    stopped = evictor.stop();
  };
  await evictor.run('maxsize exceeded');
  await stopped;
  assert.equal(await store.blobs.size(digests[0]!), undefined, 'the first was evicted');
  assert.equal(await store.blobs.size(digests[1]!), 300_000, 'the pass stopped before the second');
  assert.equal((await evictor.run('after shutdown')).evicted, 0);
  evictor.maybeRun();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(await store.blobs.size(digests[1]!), 300_000);
});
