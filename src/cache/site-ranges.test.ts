/** @module cache/site-ranges.test — a cold blob's range asked of the site's elected replica first: its bytes kept like the upstream's, the upstream asked only for what it did not send, never for a peer's own request. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { digestOf } from '../oci/digest.js';
import type { UpstreamConfig } from '../config/types.js';
import type { FillRouter } from '../ports/fills.js';
import type { RegistryClient } from '../upstream/client.js';
import type { Target } from '../upstream/target.js';
import { testStore } from './cache-testkit.js';
import { RangePacer } from './fill-pacing.js';
import { unrefTimer } from '../util/unref-timer.js';
import { UpstreamRanges } from './upstream-ranges.js';

const logger = pino({ level: 'silent' });
const removers: Array<() => Promise<void>> = [];
after(async () => {
  for (const r of removers) await r();
});

const content = randomBytes(200_000);
const digest = digestOf(content);

/** An upstream honouring Range that records the Range of each GET. */
function upstream(): { target: Target; asked: string[] } {
  const asked: string[] = [];
  const client = {
    name: 'central',
    send: async (req: { method: string; headers?: Record<string, string> }) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers?.['range'] ?? '')!;
      const [start, end] = [Number(m[1]), Number(m[2])];
      asked.push(`${start}-${end}`);
      const stream = Readable.from([content.subarray(start, end + 1)]);
      return {
        status: 206,
        headers: { 'content-length': String(end - start + 1), 'content-range': `bytes ${start}-${end}/${content.length}` },
        body: Object.assign(stream, { dump: async () => void stream.resume(), text: async () => '' }),
      };
    },
  } as unknown as RegistryClient;
  const config = { name: 'central', rangefetch: true } as unknown as UpstreamConfig;
  return { target: { upstream: { client, config }, key: 'central', repository: 'lib/app' }, asked };
}

/** A site router whose elected peer answers with `answer` (cut after `cutAfter` bytes when given); records each ask. */
function site(answer: 'peer' | 'none', cutAfter?: number) {
  const asked: string[] = [];
  const router = {
    range: async ({ start, end }: { start: number; end: number }) => {
      asked.push(`${start}-${end}`);
      if (answer === 'none') return undefined;
      return (async function* () {
        const bytes = content.subarray(start, end + 1);
        yield bytes.subarray(0, cutAfter ?? bytes.length);
        if (cutAfter !== undefined) throw new Error('peer went away');
      })();
    },
  } as unknown as FillRouter;
  return { router, asked };
}

async function setup(router: FillRouter) {
  const store = await testStore(Date.now);
  removers.push(store.remove);
  const ranges = new UpstreamRanges({ repos: store.ports.repos, logger, pacer: new RangePacer(Date.now, unrefTimer), router });
  const kept = await store.blobs.kept.forRanges(digest, content.length);
  return { ranges, kept };
}

async function drain(body: AsyncIterable<Uint8Array> | undefined): Promise<Buffer> {
  assert.ok(body, 'a body');
  const parts: Uint8Array[] = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
}

test("a range is the elected replica's to fetch: the upstream is not asked, and its bytes are kept here", async () => {
  const peer = site('peer');
  const { ranges, kept } = await setup(peer.router);
  const { target, asked } = upstream();
  const got = await drain(await ranges.fetch(target, digest, 1000, 50_999, kept, true));
  assert.ok(got.equals(content.subarray(1000, 51_000)));
  assert.deepEqual(peer.asked, ['1000-50999']);
  assert.deepEqual(asked, [], 'no upstream request');
  assert.equal(kept.presentEnd(1000), 51_000, 'kept for the fill like upstream bytes');
});

test('a peer that stops mid-range: the upstream is asked for the rest only, and the answer is byte-exact', async () => {
  const peer = site('peer', 12_345);
  const { ranges, kept } = await setup(peer.router);
  const { target, asked } = upstream();
  const got = await drain(await ranges.fetch(target, digest, 1000, 50_999, kept, true));
  assert.ok(got.equals(content.subarray(1000, 51_000)));
  assert.deepEqual(asked, [`${1000 + 12_345}-50999`]);
  assert.equal(kept.presentEnd(1000), 51_000);
});

test('no peer to ask (this replica is elected, or the site is unavailable): the upstream is asked', async () => {
  const peer = site('none');
  const { ranges, kept } = await setup(peer.router);
  const { target, asked } = upstream();
  const got = await drain(await ranges.fetch(target, digest, 0, 9_999, kept, true));
  assert.ok(got.equals(content.subarray(0, 10_000)));
  assert.deepEqual(peer.asked, ['0-9999']);
  assert.deepEqual(asked, ['0-9999']);
});

test("a peer's own range request is never forwarded to another replica", async () => {
  const peer = site('peer');
  const { ranges, kept } = await setup(peer.router);
  const { target, asked } = upstream();
  const got = await drain(await ranges.fetch(target, digest, 0, 9_999, kept, false));
  assert.ok(got.equals(content.subarray(0, 10_000)));
  assert.deepEqual(peer.asked, [], 'the site router is not asked');
  assert.deepEqual(asked, ['0-9999']);
});
