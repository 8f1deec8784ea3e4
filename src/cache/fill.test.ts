/** @module cache/fill.test — shared fills: late joiners, verification hold-back, readers leaving. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { type Readable, Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BlobStore } from '../storage/blob-files.js';
import { digestOf } from '../oci/digest.js';
import { BufferPool, ResponseClosedError } from '../storage/send.js';
import { BlobFill } from './fill.js';
import { DEFAULT_RETRY, pumpFill, type FillSource } from './fill-pump.js';

const hooks = { now: Date.now, sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };

function once(body: AsyncIterable<Uint8Array>): FillSource {
  return { open: async () => body, retriable: () => false };
}

/** An upstream body the test releases chunk by chunk: each step() lets one more chunk through. */
function gatedSource(chunks: Buffer[]) {
  let allowed = 0;
  let wake: () => void = () => undefined;
  return {
    step() {
      allowed++;
      wake();
    },
    async *body() {
      for (let i = 0; i < chunks.length; i++) {
        while (i >= allowed)
          await new Promise<void>((r) => {
            wake = r;
          });
        yield chunks[i]!;
      }
    },
  };
}

async function collect(stream: Readable): Promise<{ data: Buffer; error?: Error }> {
  const parts: Buffer[] = [];
  try {
    for await (const c of stream) parts.push(c as Buffer);
    return { data: Buffer.concat(parts) };
  } catch (error) {
    return { data: Buffer.concat(parts), error: error as Error };
  }
}

async function setup() {
  const root = await mkdtemp(join(tmpdir(), 'berth-fill-'));
  const store = new BlobStore(root);
  await store.init();
  return { root, store, cleanup: () => rm(root, { recursive: true, force: true }) };
}

test('readers joining at different moments all receive the verified bytes; the blob is committed', async () => {
  const { store, cleanup } = await setup();
  const content = randomBytes(300_000);
  const digest = digestOf(content);
  const chunks = [content.subarray(0, 100_000), content.subarray(100_000, 200_000), content.subarray(200_000)];
  const src = gatedSource(chunks);
  const fill = new BlobFill(digest, store.newTempPath(), store.path(digest));
  const writer = await store.createWriter('sha256', fill.tempPath);
  fill.markReady(content.length);
  const pump = pumpFill(fill, once(src.body()), writer, DEFAULT_RETRY, hooks);
  const early = collect(fill.createReader(0, undefined));
  src.step();
  await new Promise((r) => setTimeout(r, 20));
  const late = collect(fill.createReader(0, undefined));
  const ranged = collect(fill.createReader(150_000, 250_000));
  const leaver = fill.createReader(0, undefined);
  leaver.destroy();
  src.step();
  src.step();
  src.step();
  await pump;
  for (const r of [await early, await late]) {
    assert.equal(r.error, undefined);
    assert.ok(r.data.equals(content));
  }
  assert.ok((await ranged).data.equals(content.subarray(150_000, 250_001)));
  assert.equal(await store.size(digest), content.length);
  await cleanup();
});

test('a corrupt transfer never completes a reader and stores nothing', async () => {
  const { root, store, cleanup } = await setup();
  const content = randomBytes(100_000);
  const digest = digestOf(content);
  const corrupt = Buffer.from(content);
  corrupt[50_000] = corrupt[50_000]! ^ 0xff;
  const src = gatedSource([corrupt.subarray(0, 60_000), corrupt.subarray(60_000)]);
  const fill = new BlobFill(digest, store.newTempPath(), store.path(digest));
  const writer = await store.createWriter('sha256', fill.tempPath);
  fill.markReady(content.length);
  const pump = pumpFill(fill, once(src.body()), writer, DEFAULT_RETRY, hooks).catch((e: Error) => e);
  const reader = collect(fill.createReader(0, undefined));
  src.step();
  src.step();
  src.step();
  const err = await pump;
  assert.ok(err instanceof Error && /does not match/.test(err.message));
  const r = await reader;
  assert.ok(r.error, 'reader must fail');
  assert.ok(r.data.length < content.length, 'reader must not receive every byte');
  assert.equal(await store.size(digest), undefined);
  assert.deepEqual(await readdir(join(root, 'tmp')), []);
  await cleanup();
});

test('a transfer cut mid-way resumes from the last byte written; readers never notice', async () => {
  const { store, cleanup } = await setup();
  const content = randomBytes(200_000);
  const digest = digestOf(content);
  const offsets: number[] = [];
  const source: FillSource = {
    async open(offset) {
      offsets.push(offset);
      return (async function* () {
        yield content.subarray(offset, Math.min(offset + 70_000, content.length));
        if (offset + 70_000 < content.length) throw Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
      })();
    },
    retriable: (err) => (err as { code?: string }).code === 'UND_ERR_SOCKET',
  };
  const fill = new BlobFill(digest, store.newTempPath(), store.path(digest));
  const writer = await store.createWriter('sha256', fill.tempPath);
  fill.markReady(content.length);
  const reader = collect(fill.createReader(0, undefined));
  const result = await pumpFill(fill, source, writer, { ...DEFAULT_RETRY, baseDelayMs: 1 }, hooks);
  assert.equal(result.stored, true);
  assert.deepEqual(offsets, [0, 70_000, 140_000]);
  assert.ok((await reader).data.equals(content));
  await cleanup();
});

test('a reader joining between the rename and the verified mark reads the committed file', async () => {
  const { store, cleanup } = await setup();
  const content = randomBytes(50_000);
  const digest = digestOf(content);
  const fill = new BlobFill(digest, store.newTempPath(), store.path(digest));
  const writer = await store.createWriter('sha256', fill.tempPath);
  fill.markReady(content.length);
  await fill.accept(content, writer, async () => undefined);
  await writer.commit(digest, content.length);
  const reader = collect(fill.createReader(0, undefined));
  await new Promise((r) => setTimeout(r, 10));
  fill.succeed(true);
  const r = await reader;
  assert.equal(r.error, undefined);
  assert.ok(r.data.equals(content));
  await cleanup();
});

/** A socket-like writable that takes `delayMs` per write (later writes queue in it meanwhile). */
function slowSink(delayMs: number) {
  const parts: Buffer[] = [];
  const w = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, cb) {
      parts.push(Buffer.from(chunk)); // a copy: send() may reuse its buffer once cb has run
      setTimeout(cb, delayMs);
    },
  });
  return { w, data: () => Buffer.concat(parts) };
}

class CountingPool extends BufferPool {
  taken = 0;
  given = 0;
  override take(): Buffer {
    this.taken++;
    return super.take();
  }
  override give(buf: Buffer): void {
    this.given++;
    super.give(buf);
  }
}

test('send() delivers a fill to a slow writable, and to a late joiner from disk through pool buffers that all come back', async () => {
  const { store, cleanup } = await setup();
  const content = randomBytes(3 * 1024 * 1024);
  const digest = digestOf(content);
  const chunks = Array.from({ length: 48 }, (_, i) => content.subarray(i * 65_536, (i + 1) * 65_536));
  const src = gatedSource(chunks);
  const fill = new BlobFill(digest, store.newTempPath(), store.path(digest));
  const writer = await store.createWriter('sha256', fill.tempPath);
  fill.markReady(content.length);
  const pump = pumpFill(fill, once(src.body()), writer, DEFAULT_RETRY, hooks);
  const pool = new CountingPool();
  const early = slowSink(1);
  const sent: number[] = [];
  const earlyDone = fill.send(early.w, 0, content.length - 1, (n) => sent.push(n), pool);
  for (let i = 0; i < 40; i++) src.step();
  await new Promise((r) => setTimeout(r, 50));
  // 2.5 MiB in: past the bytes held in memory, so the late reader starts from the temp file.
  const late = slowSink(2);
  const lateDone = fill.send(late.w, 0, content.length - 1, () => undefined, pool);
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 8; i++) src.step();
  await new Promise((r) => setTimeout(r, 20));
  await Promise.all([earlyDone, lateDone, pump]);
  assert.ok(early.data().equals(content));
  assert.ok(late.data().equals(content));
  assert.equal(
    sent.reduce((a, b) => a + b, 0),
    content.length,
  );
  assert.ok(pool.taken > 0);
  assert.equal(pool.given, pool.taken, 'every pool buffer comes back');
  assert.equal(fill.readers, 0);
  await cleanup();
});

test('send() to a writable that closes early rejects, and the fill goes on without that reader', async () => {
  const { store, cleanup } = await setup();
  const content = randomBytes(400_000);
  const digest = digestOf(content);
  const src = gatedSource([content.subarray(0, 100_000), content.subarray(100_000)]);
  const fill = new BlobFill(digest, store.newTempPath(), store.path(digest));
  const writer = await store.createWriter('sha256', fill.tempPath);
  fill.markReady(content.length);
  const pump = pumpFill(fill, once(src.body()), writer, DEFAULT_RETRY, hooks);
  const sink = slowSink(0);
  const done = fill.send(sink.w, 0, content.length - 1, () => undefined, new BufferPool(0)).catch((e: Error) => e);
  src.step();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(fill.readers, 1);
  sink.w.destroy();
  assert.ok((await done) instanceof ResponseClosedError);
  assert.equal(fill.readers, 0);
  assert.ok(sink.data().length < content.length);
  src.step();
  src.step();
  await pump;
  assert.equal(await store.size(digest), content.length);
  await cleanup();
});

test('send() keeps no chunk alive once written: memory of a reader does not grow with the blob', async () => {
  // The collector is asked for directly so the figure below is what is reachable, not what is uncollected.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const { store, cleanup } = await setup();
  const count = 320;
  const content = randomBytes(count * 65_536);
  const digest = digestOf(content);
  let allowed = 0;
  let wake = (): void => undefined;
  const src = {
    step() {
      allowed++;
      wake();
    },
    // Each chunk a copy made as it is sent, as an upstream socket's are.
    async *body() {
      for (let i = 0; i < count; i++) {
        while (i >= allowed) await new Promise<void>((r) => (wake = r));
        yield Buffer.from(content.subarray(i * 65_536, (i + 1) * 65_536));
      }
    },
  };
  const fill = new BlobFill(digest, store.newTempPath(), store.path(digest));
  const writer = await store.createWriter('sha256', fill.tempPath);
  fill.markReady(content.length);
  const pump = pumpFill(fill, once(src.body()), writer, DEFAULT_RETRY, hooks);
  let received = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      received += chunk.length;
      setImmediate(cb);
    },
  });
  gc();
  await new Promise((r) => setTimeout(r, 50));
  const before = process.memoryUsage().arrayBuffers;
  const done = fill.send(sink, 0, content.length - 1, () => undefined, new BufferPool(0));
  // All but the last chunk through, a few at a time, while the response is still open.
  for (let i = 0; i < count - 1; i++) {
    src.step();
    if (i % 8 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  while (received < (count - 1) * 65_536) await new Promise((r) => setTimeout(r, 5));
  // Backing stores are freed by a sweeper after the collection: give it a moment, twice.
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  const held = process.memoryUsage().arrayBuffers - before;
  // The fill's in-memory tail (1 MiB) and a few buffers in flight, not the 20 MiB sent.
  assert.ok(held < 6 * 1024 * 1024, `${(held / 1048576).toFixed(1)} MiB still reachable after 20 MiB sent`);
  src.step();
  await Promise.all([done, pump]);
  assert.equal(received, content.length);
  await cleanup();
});
