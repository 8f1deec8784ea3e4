/** @module e2e/ranges.test — Range requests through berth with curl, bytes checked exactly: multi-range answers (206 multipart/byteranges) on stored blobs, and ranges of cold blobs answered from upstream Range requests (proxy.rangefetch) behind a slow link. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { startRelay, type Relay } from '../fixtures/relay.js';
import { sampleSum, scrape } from '../fixtures/admin.js';
import { makeTempDir, removeDir, run, waitFor } from '../fixtures/proc.js';

const MiB = 1 << 20;
let registry: Registry;
let berth: Berth;
let image: BuiltImage;
let layer: Buffer;
let dir: string;
let relay: Relay;
/** The WAN link to the registry: slow enough that a 17 MiB fill takes seconds. */
const LINK_BYTES_PER_SEC = 4 * MiB;

before(async () => {
  dir = await makeTempDir('berth-ranges');
  registry = await startRegistry();
  image = await buildImage({ layers: 1, layerSize: 17 * MiB, tag: 'v1' });
  await pushImage(image, registry.url, 'xing/ranges:v1');
  layer = await readFile(path.join(image.dir, 'blobs', 'sha256', image.layers[0]!.digest.slice(7)));
  berth = await startBerth({ proxy: { remoteurl: registry.url } });
  relay = await startRelay({ targetPort: registry.port, rateBytesPerSec: LINK_BYTES_PER_SEC });
});

after(async () => {
  await berth?.stop();
  await relay?.stop();
  await registry?.stop();
  await image?.remove();
  if (dir) await removeDir(dir);
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

let calls = 0;
/** One request by curl; the body as received, byte for byte. */
async function curl(url: string, range: string | undefined, head = false): Promise<Answer> {
  const n = calls++;
  const headerFile = path.join(dir, `h${n}`);
  const bodyFile = path.join(dir, `b${n}`);
  await run('curl', ['-sS', ...(head ? ['-I'] : []), '-D', headerFile, '-o', bodyFile, ...(range ? ['-H', `Range: ${range}`] : []), url]);
  const lines = (await readFile(headerFile, 'latin1')).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(lines[0]!.split(' ')[1]), headers, body: await readFile(bodyFile).catch(() => Buffer.alloc(0)) };
}

/** The parts of a multipart/byteranges body, checked against RFC 9110's layout as it goes. */
function parts(answer: Answer): Array<{ start: number; end: number; size: number; type: string; bytes: Buffer }> {
  const m = /^multipart\/byteranges; boundary=(\S+)$/.exec(answer.headers['content-type'] ?? '');
  assert.ok(m, `content-type ${answer.headers['content-type']}`);
  const boundary = m[1]!;
  const body = answer.body;
  assert.equal(body.length, Number(answer.headers['content-length']), 'Content-Length is exact');
  const out: Array<{ start: number; end: number; size: number; type: string; bytes: Buffer }> = [];
  let at = 0;
  for (;;) {
    const delimiter = `${out.length === 0 ? '' : '\r\n'}--${boundary}`;
    assert.equal(body.toString('latin1', at, at + delimiter.length), delimiter);
    at += delimiter.length;
    if (body.toString('latin1', at, at + 4) === '--\r\n') {
      assert.equal(at + 4, body.length, 'nothing after the closing delimiter');
      return out;
    }
    const headEnd = body.indexOf('\r\n\r\n', at, 'latin1');
    const fields: Record<string, string> = {};
    for (const line of body.toString('latin1', at + 2, headEnd).split('\r\n')) {
      const colon = line.indexOf(':');
      fields[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const cr = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(fields['content-range'] ?? '');
    assert.ok(cr, `part Content-Range ${fields['content-range']}`);
    const [start, end, size] = [Number(cr[1]), Number(cr[2]), Number(cr[3])];
    at = headEnd + 4;
    out.push({ start, end, size, type: fields['content-type'] ?? '', bytes: body.subarray(at, at + end - start + 1) });
    at += end - start + 1;
  }
}

const blobUrl = (b: Berth = berth) => `${b.url}/v2/xing/ranges/blobs/${image.layers[0]!.digest}`;

/** The answer to `range` is exactly `expected` (start, end inclusive) as parts. */
function assertParts(answer: Answer, expected: Array<[number, number]>): void {
  assert.equal(answer.status, 206);
  const got = parts(answer);
  assert.deepEqual(
    got.map((p) => [p.start, p.end]),
    expected,
  );
  for (const p of got) {
    assert.equal(p.size, layer.length);
    assert.equal(p.type, 'application/octet-stream');
    assert.ok(p.bytes.equals(layer.subarray(p.start, p.end + 1)), `bytes ${p.start}-${p.end} exact`);
  }
}

export const MULTI = 'bytes=0-99,1000-1099,50000-50099,-4096';

test('a stored blob: several ranges are one 206 multipart/byteranges answer, bytes exact, overlapping ones coalesced', async () => {
  const whole = await curl(blobUrl(), undefined);
  assert.equal(whole.status, 200);
  assert.ok(whole.body.equals(layer));
  const size = layer.length;
  assertParts(await curl(blobUrl(), MULTI), [
    [0, 99],
    [1000, 1099],
    [50000, 50099],
    [size - 4096, size - 1],
  ]);
  assertParts(await curl(blobUrl(), `bytes=5000-5999,0-9,5500-6500,10-19,${size - 10}-`), [
    [0, 19],
    [5000, 6500],
    [size - 10, size - 1],
  ]);
  // Coalesced into one range: a plain 206 with Content-Range.
  const one = await curl(blobUrl(), 'bytes=100-199,200-299');
  assert.equal(one.status, 206);
  assert.equal(one.headers['content-range'], `bytes 100-299/${size}`);
  assert.ok(one.body.equals(layer.subarray(100, 300)));
});

test('a stored blob: the parts of a multipart answer go by sendfile over plain TCP, framed exactly', async () => {
  const size = layer.length;
  // Bound once start-up's first requests are over (util/after-quiet); until then blobs are copied.
  await waitFor(async () => (await berth.logLines()).some((l) => String(l['msg']).includes('by sendfile(2)')), 10_000, { what: 'sendfile(2) bound' });
  const before = sampleSum(await scrape(berth.url), 'berth_sendfile_bytes_total');
  // Parts large enough that sendfile carries most of them (each part's first bytes may be one small write).
  const spans: Array<[number, number]> = [
    [0, 4 * MiB - 1],
    [6 * MiB, 10 * MiB - 1],
    [size - 3 * MiB, size - 1],
  ];
  assertParts(await curl(blobUrl(), `bytes=${spans.map(([a, b]) => `${a}-${b}`).join(',')}`), spans);
  const partBytes = spans.reduce((n, [a, b]) => n + b - a + 1, 0);
  const kernel = sampleSum(await scrape(berth.url), 'berth_sendfile_bytes_total') - before;
  assert.ok(kernel >= partBytes * 0.9 && kernel <= partBytes, `sendfile moved ${kernel} of ${partBytes} part bytes`);
});

test('a stored blob: past the bounds (more than 1,024 ranges, more bytes than the blob) the blob is sent whole; none satisfiable is 416', async () => {
  const many = 'bytes=' + Array.from({ length: 1025 }, (_, i) => `${i * 10}-${i * 10}`).join(',');
  const tooMany = await curl(blobUrl(), many);
  assert.equal(tooMany.status, 200);
  assert.ok(tooMany.body.equals(layer));
  const tooMuch = await curl(blobUrl(), `bytes=0-${layer.length - 1},0-9`);
  assert.equal(tooMuch.status, 200);
  assert.equal(tooMuch.body.length, layer.length);
  const none = await curl(blobUrl(), `bytes=${layer.length}-,${layer.length + 5}-${layer.length + 9}`);
  assert.equal(none.status, 416);
  assert.equal(none.headers['content-range'], `bytes */${layer.length}`);
});

test('HEAD with several ranges gets the status and headers a GET gets', async () => {
  const head = await curl(blobUrl(), MULTI, true);
  assert.equal(head.status, 206);
  assert.match(head.headers['content-type'] ?? '', /^multipart\/byteranges; boundary=/);
  const get = await curl(blobUrl(), MULTI);
  assert.equal(head.headers['content-length'], get.headers['content-length']);
});

/** A berth with an empty store behind the slow link. */
const coldBerth = (rangefetch?: boolean) =>
  startBerth({ config: { version: 0.1, proxy: { remoteurl: relay.url, ...(rangefetch === undefined ? {} : { rangefetch }) } } });

/** The registry's answers for the layer, by status. */
async function layerAnswers(status: number): Promise<number[]> {
  const digest = image.layers[0]!.digest;
  return (await registry.requests()).filter((r) => r.method === 'GET' && r.status === status && r.uri.includes(digest)).map((r) => r.written);
}

/** Whether berth has logged the layer's fill as complete (verified and stored). */
async function filled(b: Berth): Promise<boolean> {
  return (await b.logLines()).some((l) => l.msg === 'blob fill complete' && l.digest === image.layers[0]!.digest);
}

test('a cold blob: the footer is answered from an upstream Range request while the fill runs; then the whole blob is served complete, verified', async () => {
  const cold = await coldBerth();
  try {
    const before206 = (await layerAnswers(206)).length;
    const wanBefore = relay.bytesToClient();
    const footer = await curl(blobUrl(cold), 'bytes=-65536');
    assert.equal(footer.status, 206);
    assert.equal(footer.headers['content-range'], `bytes ${layer.length - 65536}-${layer.length - 1}/${layer.length}`);
    assert.ok(footer.body.equals(layer.subarray(layer.length - 65536)), 'footer bytes exact');
    assert.equal(await filled(cold), false, 'answered before the whole blob had crossed the link');
    assert.deepEqual((await layerAnswers(206)).slice(before206), [65536], 'the registry sent the footer alone as a range');

    // The background fill completes and is verified; the whole blob then comes from the store.
    await waitFor(() => filled(cold), 60_000, { what: 'the background fill to complete' });
    const whole = await curl(blobUrl(cold), undefined);
    assert.equal(whole.status, 200);
    assert.ok(whole.body.equals(layer), 'whole blob exact');
    const wan = relay.bytesToClient() - wanBefore;
    assert.ok(wan < layer.length * 1.05, `WAN bytes ${wan} for the footer then the whole blob of ${layer.length}`);
    // Multi-range on the now stored blob.
    assertParts(await curl(blobUrl(cold), MULTI), [
      [0, 99],
      [1000, 1099],
      [50000, 50099],
      [layer.length - 4096, layer.length - 1],
    ]);
  } finally {
    await cold.stop();
  }
});

test('a cold blob: several ranges are one multipart answer, each missing part asked of the upstream, bytes exact', async () => {
  const cold = await coldBerth();
  try {
    const before206 = (await layerAnswers(206)).length;
    assertParts(await curl(blobUrl(cold), MULTI), [
      [0, 99],
      [1000, 1099],
      [50000, 50099],
      [layer.length - 4096, layer.length - 1],
    ]);
    assert.equal(await filled(cold), false, 'answered before the whole blob had crossed the link');
    const ranges = (await layerAnswers(206)).slice(before206);
    // The background fill may already be asking for the gaps between kept ranges (also 206s): the
    // parts' own four ranges must be among them.
    for (const n of [100, 100, 100, 4096]) {
      const at = ranges.indexOf(n);
      assert.ok(at >= 0, `the registry sent the parts as ranges: ${ranges.join(', ')}`);
      ranges.splice(at, 1);
    }
    await waitFor(() => filled(cold), 60_000, { what: 'the background fill to complete' });
  } finally {
    await cold.stop();
  }
});

test('rangefetch: false: a range of a cold blob waits for the verified fill, and the registry is asked for no range', async () => {
  const cold = await coldBerth(false);
  try {
    const before206 = (await layerAnswers(206)).length;
    const footer = await curl(blobUrl(cold), 'bytes=-65536');
    assert.equal(footer.status, 206);
    assert.ok(footer.body.equals(layer.subarray(layer.length - 65536)));
    assert.equal(await filled(cold), true, 'the last byte waited for the digest check');
    assert.deepEqual((await layerAnswers(206)).slice(before206), []);
  } finally {
    await cold.stop();
  }
});
