/** @module http/fuzz.test — property loops with random input over the parsers hostile clients reach: Range, Content-Range, Authorization, Accept, digests. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBasic } from '../auth/access.js';
import { parseDigest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { parseAccept } from '../oci/mediatypes.js';
import { parseContentRange, parseRange, parseRanges, type RangeResult } from './range.js';

/** Each property runs this long at most (and at most ITERATIONS times): bounded, however fast the machine. */
const BUDGET_MS = 400;
const ITERATIONS = 20_000;

/** A small seeded generator, so a failure names the seed that reproduces it. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x1_0000_0000;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const text = (alphabet: string, max: number) => Array.from({ length: int(max + 1) }, () => alphabet[int(alphabet.length)]).join('');
  return { next, int, pick, text };
}

function forAll(name: string, body: (r: ReturnType<typeof rng>, seed: number) => void): void {
  const seed = Date.now() ^ (process.pid << 8);
  const r = rng(seed);
  const until = Date.now() + BUDGET_MS;
  for (let i = 0; i < ITERATIONS && Date.now() < until; i++) {
    try {
      body(r, seed);
    } catch (err) {
      throw new Error(`${name}: property failed (seed ${seed}, iteration ${i}): ${(err as Error).message}`);
    }
  }
}

/** The expression berth used before: correct on short input, quadratic on long whitespace runs. */
function oracleRange(header: string | undefined, size: number): RangeResult {
  if (!header) return { kind: 'none' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return { kind: 'none' };
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return { kind: 'none' };
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || (b !== '' && Number(b) < start)) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end };
}

const RANGE_ALPHABET = ' \t bytesBYTES=-=-0123456789,x;/';

test('Range: agrees with the former expression on short random input, and any range it gives lies inside the blob', () => {
  forAll('Range', (r) => {
    const header = r.text(RANGE_ALPHABET, 24);
    const size = r.pick([0, 1, 2, 10, 1000, r.int(1 << 30)]);
    const got = parseRange(header, size);
    assert.deepEqual(got, oracleRange(header, size), JSON.stringify({ header, size }));
    if (got.kind === 'range') assert.ok(got.start >= 0 && got.start <= got.end && got.end < size, JSON.stringify({ header, size, got }));
  });
});

test('Range: well-formed single ranges with random spacing parse to their numbers', () => {
  forAll('Range well-formed', (r) => {
    const size = 1 + r.int(1 << 20);
    const start = r.int(size);
    const end = start + r.int(size - start);
    const sp = () => r.pick(['', ' ', '  ', '\t']);
    const header = `${sp()}${r.pick(['bytes', 'Bytes', 'BYTES'])}${sp()}=${sp()}${start}${sp()}-${sp()}${end}${sp()}`;
    assert.deepEqual(parseRange(header, size), { kind: 'range', start, end }, header);
  });
});

test('Range: hostile long input (whitespace runs up to the 16 KiB header limit) is answered in one pass', () => {
  forAll('Range long', (r) => {
    const run = ' '.repeat(r.int(16_000));
    const header = r.pick([`bytes=${run}x`, `bytes${run}=${run}1${run}-${run}`, `${run}bytes=1-2${run}x`, `bytes=1${run}-${run}2${run}`]);
    const got = parseRange(header, 100);
    assert.ok(got.kind === 'none' || got.kind === 'range', header.length.toString());
  });
});

test('Content-Range: random input never throws; what parses is two safe integers', () => {
  forAll('Content-Range', (r) => {
    const raw = r.text('0123456789-/ *bytes=', 40);
    const got = parseContentRange(raw);
    if (got) {
      assert.ok(Number.isSafeInteger(got.start) && Number.isSafeInteger(got.end), raw);
      assert.match(raw.trim(), /^(?:bytes[ =])?\d+-\d+(?:\/\d+|\/\*)?$/);
    }
    const start = r.int(1 << 30);
    const end = start + r.int(1 << 20);
    assert.deepEqual(parseContentRange(`${r.pick(['', 'bytes ', 'bytes='])}${start}-${end}${r.pick(['', '/*', `/${end + 1}`])}`), { start, end });
  });
});

test('Authorization: random headers never throw; Basic credentials round-trip', () => {
  forAll('Authorization', (r) => {
    parseBasic(r.text('BasicBearer abcXYZ019+/=_-:\t ', 60));
    parseBasic(`Basic ${Buffer.from(r.text('\u0000\u00ff:ab\n', 20), 'latin1').toString('base64')}`);
    const username = r.text('abcdefghijklmnopqrstuvwxyz0123456789._-@', 20);
    const password = r.text('abc:XYZ 0!@#$%^&*()\u00e9\u4e2d', 30);
    const header = `${r.pick(['Basic', 'basic', 'BASIC'])} ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    // An empty user and password is what containers/image sends when it has none: anonymous.
    assert.deepEqual(parseBasic(header), username === '' && password === '' ? undefined : { username, password });
  });
});

test('Accept: random headers never throw; each entry is a trimmed, lower-case, non-empty media range', () => {
  forAll('Accept', (r) => {
    const raw = r.text('application/vnd.oci+json;q=0.5, */*\tABC', 80);
    const list = parseAccept(r.next() < 0.2 ? [raw, raw] : raw);
    for (const t of list) {
      assert.ok(t.length > 0 && t === t.trim() && t === t.toLowerCase(), JSON.stringify(t));
      assert.ok(!t.includes(',') && !t.includes(';'), t);
    }
  });
});

test('digests: random strings either parse to a verifiable digest or throw DIGEST_INVALID', () => {
  forAll('digest', (r) => {
    const value = r.pick([
      r.text('sha256:0123456789abcdefABCDEF+._-=%\u0000', 80),
      `${r.pick(['sha256', 'sha512', 'sha384', 'md5', 'SHA256', 'sha256+b64'])}:${r.text('0123456789abcdef', 130)}`,
    ]);
    try {
      const d = parseDigest(value);
      assert.ok(d.algorithm === 'sha256' || d.algorithm === 'sha512');
      assert.match(d.encoded, d.algorithm === 'sha256' ? /^[0-9a-f]{64}$/ : /^[0-9a-f]{128}$/);
      assert.equal(d.digest, value);
    } catch (err) {
      assert.ok(err instanceof OciError && err.code === 'DIGEST_INVALID', `${JSON.stringify(value)}: ${(err as Error).message}`);
    }
    const hex = r.text('0123456789abcdef', 0) + Array.from({ length: 64 }, () => '0123456789abcdef'[r.int(16)]).join('');
    assert.equal(parseDigest(`sha256:${hex}`).encoded, hex);
  });
});

test('Range with several ranges: random input never throws; ranges lie in the blob, sorted, apart, within the bounds', () => {
  forAll('Ranges', (r) => {
    const header = r.text(RANGE_ALPHABET, 40);
    const size = r.pick([0, 1, 2, 10, 1000, r.int(1 << 30)]);
    const got = parseRanges(header, size);
    if (!header.includes(',')) {
      const one = parseRange(header, size);
      assert.deepEqual(got, one.kind === 'range' ? { kind: 'ranges', ranges: [{ start: one.start, end: one.end }] } : one, header);
    }
    if (got.kind !== 'ranges') return;
    let total = 0;
    got.ranges.forEach((x, i) => {
      assert.ok(x.start >= 0 && x.start <= x.end && x.end < size, JSON.stringify({ header, size, got }));
      if (i > 0) assert.ok(x.start > got.ranges[i - 1]!.end + 1, JSON.stringify({ header, size, got }));
      total += x.end - x.start + 1;
    });
    assert.ok(total <= size);
  });
});

test('Range with several ranges: hostile long lists up to the 16 KiB header limit are answered in one pass', () => {
  forAll('Ranges long', (r) => {
    const list = Array.from({ length: 1 + r.int(3000) }, () => r.pick(['0-0', '1-', '-1', '', ' ', '5-9'])).join(',');
    const got = parseRanges(`bytes=${list}`, 1 + r.int(1000));
    assert.ok(['none', 'ranges', 'unsatisfiable'].includes(got.kind));
  });
});
