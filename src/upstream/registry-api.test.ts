/** @module upstream/registry-api.test — a range asked of the upstream: its 206 body, or nothing (falling back to the fill) when it ignores the range, without reading a whole blob. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { RegistryClient, UpstreamRequest, UpstreamResponse } from './client.js';
import { getBlobRange } from './registry-api.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

function client(status: number, headers: Record<string, string>, body: Readable, sent: UpstreamRequest[]): RegistryClient {
  return {
    name: 'central',
    send: async (req: UpstreamRequest): Promise<UpstreamResponse> => {
      sent.push(req);
      return { status, headers, body: Object.assign(body, { dump: async () => void body.resume() }) as unknown as UpstreamResponse['body'] };
    },
  } as unknown as RegistryClient;
}

test('a 206 for the range asked is its body; the request names the range and counts as known', async () => {
  const sent: UpstreamRequest[] = [];
  const body = Readable.from([Buffer.from('0123456789')]);
  const got = await getBlobRange(client(206, { 'content-range': 'bytes 100-109/1000' }, body, sent), 'xing/app', DIGEST, 100, 109);
  assert.equal(got, body);
  assert.equal(sent[0]?.headers?.['range'], 'bytes=100-109');
  assert.equal(sent[0]?.known, true);
});

test('an upstream that ignores Range (200): nothing, and the whole body is dropped unread', async () => {
  let read = 0;
  const body = new Readable({
    read() {
      read++;
      this.push(Buffer.alloc(1024));
    },
  });
  const got = await getBlobRange(client(200, {}, body, []), 'xing/app', DIGEST, 0, 9);
  assert.equal(got, undefined);
  assert.ok(body.destroyed);
  assert.ok(read <= 1, 'not read on');
});

test('another range than asked: nothing; a 404: BLOB_UNKNOWN', async () => {
  const other = await getBlobRange(client(206, { 'content-range': 'bytes 0-9/1000' }, Readable.from([]), []), 'xing/app', DIGEST, 100, 109);
  assert.equal(other, undefined);
  await assert.rejects(getBlobRange(client(404, {}, Readable.from([]), []), 'xing/app', DIGEST, 0, 9), { code: 'BLOB_UNKNOWN' });
});
