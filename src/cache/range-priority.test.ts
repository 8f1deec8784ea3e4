/** @module cache/range-priority.test — in the WAN budget a client's range is foreground, the whole-blob fill it starts is background, and that fill is foreground only while a client reads it. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { digestOf } from '../oci/digest.js';
import type { UpstreamConfig } from '../config/types.js';
import type { RegistryClient } from '../upstream/client.js';
import { WorkPriority } from '../upstream/budget.js';
import type { Target } from '../upstream/target.js';
import { BlobCache } from './blob-cache.js';
import { testStore } from './cache-testkit.js';

const logger = pino({ level: 'silent' });
const removers: Array<() => Promise<void>> = [];
after(async () => {
  for (const r of removers) await r();
});

const CHUNK = 64 * 1024;

interface Sent {
  readonly range: string | undefined;
  /** The request's priority as the metering reads it, once per chunk of its answer: true = background. */
  readonly chunks: boolean[];
}

/**
 * An upstream honouring Range, recording each GET with the priority the metering would give
 * each chunk of its answer (read as the chunk is taken, as upstream/metered does); `hold` keeps
 * every answer's second chunk back until it settles.
 */
function upstream(content: Buffer, priority: WorkPriority, hold?: Promise<void>): { target: Target; sent: Sent[] } {
  const sent: Sent[] = [];
  const client = {
    name: 'central',
    send: async (req: { method: string; headers?: Record<string, string> }) => {
      const range = req.headers?.['range'];
      const m = range ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
      const start = m ? Number(m[1]) : 0;
      const end = m?.[2] ? Number(m[2]) : content.length - 1;
      const mark = priority.current();
      const record: Sent = { range, chunks: [] };
      if (req.method === 'GET') sent.push(record);
      async function* body() {
        if (req.method !== 'GET') return;
        for (let pos = start, n = 0; pos <= end; pos += CHUNK, n++) {
          if (n === 1 && hold) await hold;
          record.chunks.push(mark());
          yield content.subarray(pos, Math.min(end + 1, pos + CHUNK));
        }
      }
      const stream = Readable.from(body());
      return {
        status: m ? 206 : 200,
        headers: {
          'content-length': String(end - start + 1),
          ...(m ? { 'content-range': `bytes ${start}-${end}/${content.length}` } : {}),
        },
        body: Object.assign(stream, { dump: async () => void stream.resume(), text: async () => '' }),
      };
    },
  } as unknown as RegistryClient;
  const config = { name: 'central', rangefetch: true } as unknown as UpstreamConfig;
  return { target: { upstream: { client, config }, key: 'central', repository: 'lib/app' }, sent };
}

async function setup(content: Buffer, hold?: Promise<void>) {
  const store = await testStore(Date.now);
  removers.push(store.remove);
  const priority = new WorkPriority();
  const up = upstream(content, priority, hold);
  const cache = new BlobCache({ blobs: store.blobs, ...store.ports, logger, now: Date.now, priority, rangeQuietMs: 20 });
  const stored = async () => {
    for (let i = 0; i < 500 && (await store.blobs.size(digestOf(content))) === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(await store.blobs.size(digestOf(content)), content.length, 'the fill stored the blob');
  };
  return { cache, ...up, stored };
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
}

test("a client's range is fetched as foreground; the fill it starts as background", async () => {
  const content = randomBytes(300_000);
  const { cache, target, sent, stored } = await setup(content);
  const h = await cache.get(target, digestOf(content), undefined, { ranged: true });
  assert.ok((await drain(await h.range!(0, 999))).equals(content.subarray(0, 1000)));
  await h.close();
  await stored();
  const [rangeGet, ...fillGets] = sent;
  assert.equal(rangeGet?.range, 'bytes=0-999');
  assert.deepEqual(rangeGet?.chunks, [false], 'the range: foreground');
  assert.ok(fillGets.length > 0);
  for (const g of fillGets) assert.ok(g.chunks.length > 0 && g.chunks.every((bg) => bg), `fill request ${g.range}: background`);
});

/** A client's range of a cold blob, then the fill it started once that fill has its first chunk (background); every answer's second chunk is held back until `open()`. */
async function rangeThenFill() {
  const content = randomBytes(300_000);
  let open!: () => void;
  const hold = new Promise<void>((r) => (open = r));
  const { cache, target, sent, stored } = await setup(content, hold);
  const digest = digestOf(content);
  const h = await cache.get(target, digest, undefined, { ranged: true });
  // One chunk only: the answer's second chunk is held back.
  assert.ok((await drain(await h.range!(0, 999))).equals(content.subarray(0, 1000)));
  await h.close();
  for (let i = 0; i < 500 && !(sent.length > 1 && sent[1]!.chunks.length > 0); i++) await new Promise((r) => setTimeout(r, 10));
  return { content, open, cache, target, digest, stored, fillChunks: () => sent.slice(1).flatMap((g) => g.chunks) };
}

test('a range-started fill turns foreground once a client reads the whole blob', async () => {
  const { content, open, cache, target, digest, stored, fillChunks } = await rangeThenFill();
  const whole = await cache.get(target, digest);
  const reading = drain(whole.open());
  open();
  assert.ok((await reading).equals(content));
  await whole.close();
  await stored();
  const fill = fillChunks();
  assert.equal(fill[0], true, 'background before anyone waited for the blob');
  assert.equal(fill.at(-1), false, 'foreground once a client reads it');
});

test('a range-started fill drops back to background when its last whole-blob reader leaves', async () => {
  const { open, cache, target, digest, stored, fillChunks } = await rangeThenFill();
  // A client starts reading the whole blob, then goes away before the fill's next chunk.
  const whole = await cache.get(target, digest);
  const stream = whole.open();
  await new Promise((r) => stream.once('data', r));
  const closed = new Promise((r) => stream.once('close', r));
  stream.destroy();
  await closed;
  await whole.close();
  open();
  await stored();
  const fill = fillChunks();
  assert.ok(fill.length > 2);
  assert.ok(
    fill.every((bg) => bg),
    `background throughout: nobody waited for the chunks after the reader left (${fill.join(',')})`,
  );
});
