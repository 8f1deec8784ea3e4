/** @module cache/range-flights.test — overlapping upstream range fetches of one blob cost one fetch; a failed first fetch lets the joiner ask itself. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { RangeFlights } from './range-flights.js';

async function bytesOf(source: AsyncIterable<Uint8Array> | undefined): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of source ?? []) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

const blob = randomBytes(10_000);

test('a span inside one on its way waits for it: one upstream fetch, both exact', async () => {
  const flights = new RangeFlights();
  const asked: Array<[number, number]> = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const open = async (s: number, e: number) => {
    asked.push([s, e]);
    return (async function* () {
      yield blob.subarray(s, s + 10);
      await gate;
      yield blob.subarray(s + 10, e + 1);
    })();
  };
  const first = flights.fetch('d', 1000, 4999, open);
  const firstBytes = bytesOf(await first);
  const second = flights.fetch('d', 2000, 2999, open);
  const other = await flights.fetch('other', 2000, 2999, open);
  release();
  assert.ok((await firstBytes).equals(blob.subarray(1000, 5000)));
  assert.ok((await bytesOf(await second)).equals(blob.subarray(2000, 3000)));
  assert.ok((await bytesOf(other)).equals(blob.subarray(2000, 3000)));
  assert.deepEqual(asked, [
    [1000, 4999],
    [2000, 2999],
  ]);
});

test('a first fetch that falls back (Range ignored) or is cut leaves the joiner to ask for itself', async () => {
  const flights = new RangeFlights();
  let calls = 0;
  const ignoring = flights.fetch('d', 0, 99, async () => {
    calls++;
    await new Promise((r) => setTimeout(r, 10));
    return undefined;
  });
  const joiner = flights.fetch('d', 10, 19, async (s, e) => {
    calls++;
    return (async function* () {
      yield blob.subarray(s, e + 1);
    })();
  });
  assert.equal(await ignoring, undefined);
  assert.ok((await bytesOf(await joiner)).equals(blob.subarray(10, 20)));
  assert.equal(calls, 2);
});

test('spans overlapping ones on their way in part wait for those parts and ask the upstream only for the rest', async () => {
  const flights = new RangeFlights();
  const asked: Array<[number, number]> = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const open = async (s: number, e: number) => {
    asked.push([s, e]);
    return (async function* () {
      yield blob.subarray(s, s + 1);
      await gate;
      yield blob.subarray(s + 1, e + 1);
    })();
  };
  const a = bytesOf(await flights.fetch('d', 1000, 1999, open));
  const b = bytesOf(await flights.fetch('d', 3000, 3999, open));
  // Overlapping the end of one, the start of another, and both with the gap between.
  const tail = flights.fetch('d', 1500, 2499, open);
  const head = flights.fetch('d', 500, 1199, open);
  const across = flights.fetch('d', 1800, 3200, open);
  await new Promise((r) => setTimeout(r, 10));
  release();
  assert.ok((await a).equals(blob.subarray(1000, 2000)));
  assert.ok((await b).equals(blob.subarray(3000, 4000)));
  assert.ok((await bytesOf(await tail)).equals(blob.subarray(1500, 2500)));
  assert.ok((await bytesOf(await head)).equals(blob.subarray(500, 1200)));
  assert.ok((await bytesOf(await across)).equals(blob.subarray(1800, 3201)));
  const sorted = [...asked].sort((x, y) => x[0] - y[0]);
  // The parts on their way were not asked again. The gap [2000, 2999] both want is asked by whichever
  // gets there first and joined by the other once its reader has begun, which here may be a moment late.
  assert.deepEqual(
    sorted.filter(([s]) => s < 2000 || s >= 3000),
    [
      [500, 999],
      [1000, 1999],
      [3000, 3999],
    ],
  );
  const gapBytes = sorted.filter(([s]) => s >= 2000 && s < 3000).reduce((n, [s, e]) => n + e - s + 1, 0);
  assert.ok(gapBytes >= 1000 && gapBytes <= 1500, JSON.stringify(sorted));
});

test('requests that come before the first fetch was answered wait for it too: one upstream fetch', async () => {
  const flights = new RangeFlights();
  const asked: Array<[number, number]> = [];
  const open = async (s: number, e: number) => {
    asked.push([s, e]);
    // The upstream's answer takes a round trip: the others arrive meanwhile.
    await new Promise((r) => setTimeout(r, 20));
    return (async function* () {
      yield blob.subarray(s, e + 1);
    })();
  };
  // Each read as its answer comes, as each client's response is.
  const [a, b, c] = await Promise.all(
    [flights.fetch('d', 0, 999, open), flights.fetch('d', 0, 999, open), flights.fetch('d', 100, 499, open)].map(async (p) => bytesOf(await p)),
  );
  assert.ok(a!.equals(blob.subarray(0, 1000)) && b!.equals(blob.subarray(0, 1000)) && c!.equals(blob.subarray(100, 500)));
  assert.deepEqual(asked, [[0, 999]]);
});

test('a fetch whose stream is never read (its client left first) is given up on after the wait: the joiner fetches itself', async () => {
  const flights = new RangeFlights(true, 30);
  let calls = 0;
  const open = async (s: number, e: number) => {
    calls++;
    return (async function* () {
      yield blob.subarray(s, e + 1);
    })();
  };
  const abandoned = await flights.fetch('d', 0, 999, open);
  assert.ok(abandoned);
  // The wait's timer keeps no process alive; a server's sockets do.
  const alive = setInterval(() => undefined, 1000);
  try {
    const joiner = await flights.fetch('d', 0, 999, open);
    assert.ok((await bytesOf(joiner)).equals(blob.subarray(0, 1000)));
  } finally {
    clearInterval(alive);
  }
  assert.equal(calls, 2);
});
