/** @module cache/lazy-range.test — ranges of a blob being filled: from the fill's file as far as it reached, from the upstream beyond, from the fill when the upstream ignores ranges. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BlobStore } from '../storage/blob-files.js';
import { digestOf } from '../oci/digest.js';
import { BlobFill } from './fill.js';
import { DEFAULT_RETRY, pumpFill } from './fill-pump.js';
import { FETCH_MAX_BYTES, SPAN_FLOOR_BYTES, lazyRange, type FetchRange } from './lazy-range.js';

const hooks = { now: Date.now, sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };

async function bytesOf(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of source) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** A fill of `content` whose upstream sends one chunk per step(); the first is sent at once. */
async function gatedFill(content: Buffer, chunk: number) {
  const root = await mkdtemp(join(tmpdir(), 'berth-lazy-'));
  const store = new BlobStore(root);
  await store.init();
  const digest = digestOf(content);
  const fill = new BlobFill(digest, store.newTempPath(), store.path(digest));
  const writer = await store.createWriter('sha256', fill.tempPath);
  fill.markReady(content.length);
  let allowed = 1;
  let wake: () => void = () => undefined;
  const body = async function* () {
    for (let i = 0, at = 0; at < content.length; i++, at += chunk) {
      while (i >= allowed) await new Promise<void>((r) => (wake = r));
      yield content.subarray(at, at + chunk);
    }
  };
  const pump = pumpFill(fill, { open: async () => body(), retriable: () => false }, writer, DEFAULT_RETRY, hooks);
  while (fill.written < chunk) await fill.changed();
  const step = (): void => {
    allowed = Infinity;
    wake();
  };
  return { fill, pump, step, cleanup: () => rm(root, { recursive: true, force: true }) };
}

test('a range inside what the fill wrote comes from its file, last byte included, before the digest is checked', async () => {
  const content = randomBytes(300_000);
  const { fill, pump, step, cleanup } = await gatedFill(content, 100_000);
  const asked: Array<[number, number]> = [];
  const fetch: FetchRange = async (s, e) => {
    asked.push([s, e]);
    return (async function* () {
      yield content.subarray(s, e + 1);
    })();
  };
  assert.ok((await bytesOf(await lazyRange(fill, fetch, 10, 99_999))).equals(content.subarray(10, 100_000)));
  assert.equal(fill.state, 'receiving');
  assert.deepEqual(asked, []);
  // Straddling: the written part from the file, the rest from the upstream at once.
  assert.ok((await bytesOf(await lazyRange(fill, fetch, 90_000, 250_000))).equals(content.subarray(90_000, 250_001)));
  assert.deepEqual(asked, [[100_000, 250_000]]);
  assert.equal(fill.state, 'receiving');
  step();
  await pump;
  await cleanup();
});

test('an upstream that ignores ranges: the range follows the fill instead', async () => {
  const content = randomBytes(300_000);
  const { fill, pump, step, cleanup } = await gatedFill(content, 100_000);
  const range = lazyRange(fill, async () => undefined, 200_000, 299_999);
  const got = bytesOf(await range);
  step();
  assert.ok((await got).equals(content.subarray(200_000)));
  await pump;
  await cleanup();
});

test('a long missing span is asked of the upstream piece after piece, the next while one is sent; the fill stays held back', async () => {
  const content = randomBytes(6 * FETCH_MAX_BYTES);
  const digest = digestOf(content);
  const held = new BlobFill(digest, '/nonexistent', '/nonexistent');
  held.markReady(content.length);
  let released = false;
  held.gate.then(
    () => (released = true),
    () => undefined,
  );
  const asked: Array<[number, number]> = [];
  const fetch: FetchRange = async (s, e) => {
    asked.push([s, e]);
    return (async function* () {
      for (let at = s; at <= e; at += 64 * 1024) yield content.subarray(at, Math.min(at + 64 * 1024, e + 1));
    })();
  };
  const start = FETCH_MAX_BYTES / 2;
  const end = 3 * FETCH_MAX_BYTES + 10;
  const body = await lazyRange(held, fetch, start, end);
  // Only the first piece is asked before the answer starts: the rest as the client reads.
  assert.deepEqual(asked, [[start, start + FETCH_MAX_BYTES - 1]]);
  assert.ok((await bytesOf(body)).equals(content.subarray(start, end + 1)));
  assert.deepEqual(asked, [
    [start, start + FETCH_MAX_BYTES - 1],
    [start + FETCH_MAX_BYTES, start + 2 * FETCH_MAX_BYTES - 1],
    [start + 2 * FETCH_MAX_BYTES, end],
  ]);
  await new Promise((r) => setImmediate(r));
  assert.equal(released, false, 'the fill is not started by a range the upstream answers');
  held.fail(new Error('test over'));
});

test('a range longer than the bound follows the fill instead of the upstream, and a fill held back for ranges starts', async () => {
  const content = randomBytes(3 * FETCH_MAX_BYTES);
  const { fill, pump, step, cleanup } = await gatedFill(content, 100_000);
  const asked: number[] = [];
  const got = bytesOf(
    await lazyRange(
      fill,
      async (s) => {
        asked.push(s);
        return undefined;
      },
      FETCH_MAX_BYTES,
      2 * FETCH_MAX_BYTES,
      undefined,
      FETCH_MAX_BYTES,
    ),
  );
  step();
  assert.ok((await got).equals(content.subarray(FETCH_MAX_BYTES, 2 * FETCH_MAX_BYTES + 1)));
  assert.deepEqual(asked, []);
  await pump;
  await cleanup();
  // A fill not yet started (held back): following it releases it.
  const held = new BlobFill(digestOf(content), '/nonexistent', '/nonexistent');
  let released = false;
  held.gate.then(
    () => (released = true),
    () => undefined,
  );
  const reader = await lazyRange(held, async () => undefined, 0, 9, undefined, 4);
  await new Promise((r) => setImmediate(r));
  assert.ok(released, 'the held-back fill was let go');
  held.fail(new Error('test over'));
  await assert.rejects(bytesOf(reader));
});

test('a client leaving in the middle of a long span: the piece asked ahead is closed too (its fetch ends and is reported)', async () => {
  const content = randomBytes(6 * FETCH_MAX_BYTES);
  const held = new BlobFill(digestOf(content), '/nonexistent', '/nonexistent');
  held.markReady(content.length);
  const opened: number[] = [];
  const closed: number[] = [];
  const fetch: FetchRange = async (s, e) => {
    opened.push(s);
    return (async function* () {
      try {
        for (let at = s; at <= e; at += 64 * 1024) yield content.subarray(at, Math.min(at + 64 * 1024, e + 1));
      } finally {
        closed.push(s);
      }
    })();
  };
  const body = await lazyRange(held, fetch, 0, 2 * FETCH_MAX_BYTES + 99);
  const it = body[Symbol.asyncIterator]();
  assert.equal((await it.next()).done, false);
  await it.return?.(undefined);
  assert.deepEqual(opened, [0, FETCH_MAX_BYTES]);
  assert.deepEqual(
    closed.sort((a, b) => a - b),
    opened,
  );
  held.fail(new Error('test over'));
});

test('a range over a sixteenth of the blob (a layer split into parallel ranges) follows the fill; a few MiB of a small blob go to the upstream', async () => {
  const MiB = 1024 * 1024;
  const asked: number[] = [];
  const fetch: FetchRange = async (s, e) => {
    asked.push(s);
    return (async function* () {
      yield Buffer.alloc(e - s + 1);
    })();
  };
  const large = new BlobFill(digestOf(Buffer.from('large')), '/nonexistent', '/nonexistent');
  large.markReady(128 * MiB);
  // 8 parallel ranges of 16 MiB: the fill's work.
  void (await lazyRange(large, fetch, 16 * MiB, 32 * MiB - 1));
  assert.deepEqual(asked, []);
  // A snapshotter's 2 MiB read far into the layer: pieces from the upstream.
  const far = await lazyRange(large, fetch, 100 * MiB, 102 * MiB - 1);
  assert.equal((await bytesOf(far)).length, 2 * MiB);
  assert.deepEqual(asked, [100 * MiB, 101 * MiB]);
  large.fail(new Error('test over'));

  const small = new BlobFill(digestOf(Buffer.from('small')), '/nonexistent', '/nonexistent');
  small.markReady(16 * MiB);
  asked.length = 0;
  assert.equal((await bytesOf(await lazyRange(small, fetch, 8 * MiB, 8 * MiB + SPAN_FLOOR_BYTES - 1))).length, SPAN_FLOOR_BYTES);
  assert.equal(asked.length, SPAN_FLOOR_BYTES / FETCH_MAX_BYTES);
  small.fail(new Error('test over'));
});
