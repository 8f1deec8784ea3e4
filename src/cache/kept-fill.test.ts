/** @module cache/kept-fill.test — a fill over kept ranges asks the upstream only for the gaps (cut where ranges kept meanwhile begin), hashes every byte, rejects a wrong kept byte, and falls back to a plain fill when Range is ignored; kept ranges survive a new store (a restart). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BlobStore } from '../storage/blob-files.js';
import { digestOf } from '../oci/digest.js';
import { BlobFill } from './fill.js';
import { DEFAULT_RETRY, pumpFill } from './fill-pump.js';
import { keptFill, type Elsewhere, type GapBody } from './kept-fill.js';
import { RangeTable } from '../workers/range-table.js';

const hooks = { now: Date.now, sleep: async () => undefined };
const CHUNK = 10_000;

/** An upstream serving `content` in chunks from any offset, counting the bytes it sent; `ignoreRange`: always from 0. */
function upstream(content: Buffer, opts: { ignoreRange?: boolean; onChunk?: (pos: number) => Promise<void> } = {}) {
  const stats = { sent: 0, requests: [] as number[] };
  const open = async (pos: number): Promise<GapBody> => {
    stats.requests.push(pos);
    const start = opts.ignoreRange ? 0 : pos;
    return {
      start,
      body: (async function* () {
        for (let at = start; at < content.length; at += CHUNK) {
          await opts.onChunk?.(at);
          const chunk = content.subarray(at, at + CHUNK);
          stats.sent += chunk.length;
          yield chunk;
        }
      })(),
    };
  };
  return { open, stats };
}

async function setup(content: Buffer) {
  const root = await mkdtemp(join(tmpdir(), 'berth-kept-'));
  const store = new BlobStore(root);
  await store.init();
  const digest = digestOf(content);
  /** Keeps bytes [start, end) as a range fetch would. */
  const keep = async (start: number, end: number): Promise<void> => {
    const kept = await store.kept.forRanges(digest, content.length);
    const body = (async function* () {
      yield content.subarray(start, end);
    })();
    for await (const _ of kept.keep(body, start, end - 1, (err) => assert.fail(err))) void _;
  };
  const fill = async (open: (pos: number, last?: number) => Promise<GapBody>, elsewhere?: Elsewhere) => {
    const f = new BlobFill(digest, store.newTempPath(), store.path(digest));
    f.markReady(content.length);
    f.release();
    await store.kept.load(digest, content.length);
    const writer = await store.createWriter('sha256', f.tempPath);
    const source = {
      open: async (offset: number) =>
        keptFill(
          offset,
          () => f.size,
          () => store.kept.current(digest),
          open,
          10_000,
          undefined,
          elsewhere,
        ),
      retriable: () => false,
    };
    return pumpFill(f, source, writer, DEFAULT_RETRY, hooks);
  };
  return { root, store, digest, keep, fill, cleanup: () => rm(root, { recursive: true, force: true }) };
}

test('a fill over kept ranges fetches only the gaps, and the stored blob is the whole verified content', async () => {
  const content = randomBytes(200_000);
  const { store, digest, keep, fill, cleanup } = await setup(content);
  try {
    await keep(0, 1_000);
    await keep(150_000, 160_000);
    await keep(content.length - 5_000, content.length);
    const { open, stats } = upstream(content);
    const result = await fill(open);
    assert.equal(result.stored, true);
    assert.ok((await readFile(store.path(digest))).equals(content));
    // Gaps start at 1000 and 160000; the upstream's chunks are 10 kB, so a cut gap costs at most one chunk more.
    assert.deepEqual(stats.requests, [1_000, 160_000]);
    assert.ok(stats.sent <= content.length - 16_000 + 2 * CHUNK, `sent ${stats.sent}`);
  } finally {
    await cleanup();
  }
});

test("a range kept while the fill is under way cuts the fill's request there: those bytes cross once", async () => {
  const content = randomBytes(400_000);
  const { keep, fill, cleanup } = await setup(content);
  try {
    let kept = false;
    const { open, stats } = upstream(content, {
      onChunk: async (at) => {
        if (at === 100_000 && !kept) {
          kept = true;
          await keep(250_000, 300_000);
        }
      },
    });
    await fill(open);
    assert.deepEqual(stats.requests, [0, 300_000]);
    assert.ok(stats.sent <= content.length - 50_000 + CHUNK, `sent ${stats.sent}`);
  } finally {
    await cleanup();
  }
});

test('a wrong kept byte fails the digest check: nothing is stored', async () => {
  const content = randomBytes(100_000);
  const { root, store, digest, keep, fill, cleanup } = await setup(content);
  try {
    await keep(0, 50_000);
    const kept = store.kept.current(digest)!;
    const bytes = await readFile(kept.path);
    bytes[10] = bytes[10]! ^ 0xff;
    await writeFile(kept.path, bytes);
    await assert.rejects(fill(upstream(content).open), { code: 'DIGEST_INVALID' });
    assert.equal(await store.size(digest), undefined);
    await store.kept.discard(digest);
    await assert.rejects(readFile(kept.path), { code: 'ENOENT' });
    assert.equal(await new BlobStore(root).kept.load(digest), undefined, 'no map left either');
  } finally {
    await cleanup();
  }
});

test('an upstream that ignores Range: the fill takes its whole answer from there on, skipping what it already has', async () => {
  const content = randomBytes(100_000);
  const { store, digest, keep, fill, cleanup } = await setup(content);
  try {
    await keep(0, 20_000);
    await keep(60_000, 70_000);
    const { open, stats } = upstream(content, { ignoreRange: true });
    await fill(open);
    assert.ok((await readFile(store.path(digest))).equals(content));
    assert.deepEqual(stats.requests, [20_000], 'one request, not one per gap');
  } finally {
    await cleanup();
  }
});

test('kept ranges survive a restart (a new store on the same root); a map for another size is dropped', async () => {
  const content = randomBytes(100_000);
  const { root, digest, keep, cleanup } = await setup(content);
  try {
    await keep(10_000, 20_000);
    await keep(20_000, 30_000);
    const again = new BlobStore(root);
    const kept = await again.kept.load(digest, content.length);
    assert.deepEqual(kept?.intervals, [[10_000, 30_000]]);
    const parts: Buffer[] = [];
    for await (const c of kept.read(12_000, 25_000)) parts.push(c);
    assert.ok(Buffer.concat(parts).equals(content.subarray(12_000, 25_000)));
    assert.equal(await new BlobStore(root).kept.load(digest, content.length + 1), undefined);
    assert.equal(await new BlobStore(root).kept.load(digest), undefined, 'discarded with its file');
  } finally {
    await cleanup();
  }
});

test("another worker's range fetch under way: the fill asks the upstream only up to it, waits for it, then reads its bytes from the kept-ranges file", async () => {
  const content = randomBytes(300_000);
  const { root, store, digest, fill, cleanup } = await setup(content);
  try {
    const table = new RangeTable();
    // Worker 2 fetches [100000, 149999] for a client; the fill runs on worker 1, with no kept bytes yet.
    const [theirs] = table.claim(2, digest, 100_000, 149_999);
    await store.kept.forRanges(digest, content.length);
    const other = new BlobStore(root);
    let told!: (ok: boolean) => void;
    const notice = new Promise<boolean>((r) => (told = r));
    const worker2 = async (): Promise<void> => {
      const kept = await other.kept.forRanges(digest, content.length);
      const body = (async function* () {
        yield content.subarray(100_000, 150_000);
      })();
      for await (const _ of kept.keep(body, 100_000, 149_999, (err) => assert.fail(err))) void _;
      for (const n of table.done(2, digest, theirs!.flight, true)) if (n.worker === 1) told(n.ok);
    };
    const asked: Array<[number, number | undefined]> = [];
    let sent = 0;
    const open = async (pos: number, last?: number): Promise<GapBody> => {
      asked.push([pos, last]);
      const stop = last === undefined ? content.length : last + 1;
      return {
        start: pos,
        body: (async function* () {
          for (let at = pos; at < stop; at += CHUNK) {
            const chunk = content.subarray(at, Math.min(at + CHUNK, stop));
            sent += chunk.length;
            yield chunk;
          }
        })(),
      };
    };
    const elsewhere: Elsewhere = {
      under: async (from, to) => table.under(1, digest, from, to),
      wait: (flight) => {
        assert.equal(flight, theirs!.flight);
        worker2().catch(() => told(false));
        return notice;
      },
    };
    const result = await fill(open, elsewhere);
    assert.equal(result.stored, true);
    assert.ok((await readFile(store.path(digest))).equals(content));
    assert.deepEqual(asked, [
      [0, 99_999],
      [150_000, 299_999],
    ]);
    assert.equal(sent, content.length - 50_000);
  } finally {
    await cleanup();
  }
});
