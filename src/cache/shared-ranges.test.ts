/** @module cache/shared-ranges.test — two workers asking for overlapping ranges of a cold blob fetch each byte once: the second reads the first's bytes back from the kept-ranges file. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RangeCoordinator } from '../ports/fills.js';
import { KeptStore } from '../storage/kept-ranges.js';
import { RangeTable } from '../workers/range-table.js';
import { sharedFetch } from './shared-ranges.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Workers 1 and 2 of one host: the primary's table between them, each with its own view of the kept-ranges file. */
async function host(content: Buffer) {
  const dir = await mkdtemp(join(tmpdir(), 'berth-shared-ranges-'));
  dirs.push(dir);
  const table = new RangeTable();
  const outcomes = new Map<number, (ok: boolean) => void>();
  const told = new Map<number, boolean>();
  const coordinator = (worker: number): RangeCoordinator => ({
    claim: async (digest, start, end) => table.claim(worker, digest, start, end),
    under: async (digest, start, end) => table.under(worker, digest, start, end),
    done: (digest, flight, ok) => {
      for (const n of table.done(worker, digest, flight, ok)) {
        const w = outcomes.get(n.flight);
        if (w) w(n.ok);
        else told.set(n.flight, n.ok);
      }
    },
    wait: (flight) => (told.has(flight) ? Promise.resolve(told.get(flight)!) : new Promise((r) => outcomes.set(flight, r))),
  });
  const fetched: Array<[number, number]> = [];
  let gate: Promise<void> = Promise.resolve();
  const worker = async (n: number) => {
    const kept = await new KeptStore((d) => join(dir, d.replace(':', '/'))).forRanges('sha256:x', content.length);
    const fetch = async (s: number, e: number) => {
      fetched.push([s, e]);
      const held = gate;
      return kept.keep(
        (async function* () {
          yield content.subarray(s, s + 10);
          await held;
          yield content.subarray(s + 10, e + 1);
        })(),
        s,
        e,
        assert.fail,
      );
    };
    return (s: number, e: number) => sharedFetch(coordinator(n), 'sha256:x', s, e, kept, fetch, 5_000);
  };
  return {
    worker,
    fetched,
    hold: (p: Promise<void>): void => {
      gate = p;
    },
  };
}

async function drain(body: AsyncIterable<Uint8Array> | undefined): Promise<Buffer> {
  assert.ok(body);
  const parts: Uint8Array[] = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
}

test('overlapping ranges on two workers: each byte asked of the upstream once, both answers exact', async () => {
  const content = randomBytes(4096);
  const h = await host(content);
  let open!: () => void;
  h.hold(new Promise<void>((r) => (open = r)));
  const [one, two] = [await h.worker(1), await h.worker(2)];
  const first = one(1000, 1999);
  const a = drain(await first);
  const b = two(500, 2499).then(drain);
  open();
  assert.ok((await a).equals(content.subarray(1000, 2000)));
  assert.ok((await b).equals(content.subarray(500, 2500)));
  assert.deepEqual(
    h.fetched.sort((x, y) => x[0] - y[0]),
    [
      [500, 999],
      [1000, 1999],
      [2000, 2499],
    ],
    'worker 2 fetched only around what worker 1 was fetching',
  );
});

test('a fetch that fails leaves the waiting worker to fetch those bytes itself', async () => {
  const content = randomBytes(4096);
  const h = await host(content);
  const [one, two] = [await h.worker(1), await h.worker(2)];
  const body = await one(0, 999);
  const it = body![Symbol.asyncIterator]();
  await it.next();
  const b = two(0, 999).then(drain);
  // Worker 1's client goes away after the first chunk: its bytes are not all kept.
  await it.return!(undefined);
  assert.ok((await b).equals(content.subarray(0, 1000)));
  assert.equal(h.fetched.length, 2);
});
