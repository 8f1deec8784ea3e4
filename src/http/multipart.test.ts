/** @module http/multipart.test — the multipart/byteranges layout: exact length, one head per part, parts in order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { multipartBody, planMultipart } from './multipart.js';

const blob = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

async function collect(gen: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of gen) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

test('the body is the RFC 9110 layout, its length the planned one', async () => {
  const ranges = [
    { start: 0, end: 9 },
    { start: 500, end: 599 },
  ];
  const plan = planMultipart(ranges, blob.length, 'application/octet-stream', 'B0UND');
  assert.equal(plan.contentType, 'multipart/byteranges; boundary=B0UND');
  let counted = 0;
  const body = await collect(
    multipartBody(
      plan,
      async function* (r) {
        // Two chunks per part: parts are streamed, not assembled.
        yield blob.subarray(r.start, r.start + 1);
        yield blob.subarray(r.start + 1, r.end + 1);
      },
      (n) => (counted += n),
    ),
  );
  const expected = Buffer.concat([
    Buffer.from('--B0UND\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-9/1000\r\n\r\n'),
    blob.subarray(0, 10),
    Buffer.from('\r\n--B0UND\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 500-599/1000\r\n\r\n'),
    blob.subarray(500, 600),
    Buffer.from('\r\n--B0UND--\r\n'),
  ]);
  assert.deepEqual(body, expected);
  assert.equal(plan.length, expected.length);
  assert.equal(counted, 110);
});

test('a part whose source ends short throws, so the response is cut rather than padded', async () => {
  const plan = planMultipart([{ start: 0, end: 9 }], blob.length, 'application/octet-stream');
  await assert.rejects(
    collect(
      multipartBody(
        plan,
        async function* () {
          yield blob.subarray(0, 5);
        },
        () => undefined,
      ),
    ),
    /ended after 5 of 10 bytes/,
  );
});

test('boundaries differ between answers', () => {
  const a = planMultipart([{ start: 0, end: 0 }], 1, 'x/y');
  const b = planMultipart([{ start: 0, end: 0 }], 1, 'x/y');
  assert.notEqual(a.contentType, b.contentType);
});
