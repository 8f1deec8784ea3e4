/** @module upstream/registry-api.test — upstream requests: a range's 206 body, or nothing (falling back to the fill) when it ignores the range, without reading a whole blob; referrers from the API or the referrers tag schema. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { RegistryClient, UpstreamRequest, UpstreamResponse } from './client.js';
import { getBlobRange, getReferrers, referrersTag } from './registry-api.js';

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

/**
 * A client answering by path: `answers[path]` is [status, content-type, body]; anything else 404
 * with `missing` as its body (a registry's JSON error, or a router's plain text).
 */
function routed(
  answers: Record<string, [number, string, string]>,
  sent: string[],
  missing: [string, string] = ['application/json', '{"errors":[]}'],
): RegistryClient {
  let noApiNoted = false;
  return {
    name: 'central',
    get lacksReferrersApi() {
      return noApiNoted;
    },
    noteNoReferrersApi: () => {
      noApiNoted = true;
    },
    send: async (req: UpstreamRequest): Promise<UpstreamResponse> => {
      sent.push(req.path);
      const [status, type, text] = answers[req.path] ?? [404, ...missing];
      const body = Readable.from([Buffer.from(text)]);
      return {
        status,
        headers: { 'content-type': type, 'content-length': String(Buffer.byteLength(text)) },
        body: Object.assign(body, { dump: async () => void body.resume(), text: async () => text }) as unknown as UpstreamResponse['body'],
      };
    },
  } as unknown as RegistryClient;
}

test('referrers of a registry without the API come from the referrers tag schema; a tag holding an image lists none', async () => {
  assert.equal(referrersTag(DIGEST), `sha256-${'a'.repeat(64)}`);
  const entry = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${'b'.repeat(64)}`,
    size: 10,
    artifactType: 'application/vnd.amazon.soci.index.v1+json',
  };
  const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry] });
  const sent: string[] = [];
  const got = await getReferrers(
    routed({ [`manifests/sha256-${'a'.repeat(64)}`]: [200, 'application/vnd.oci.image.index.v1+json', index] }, sent),
    'xing/app',
    DIGEST,
  );
  assert.deepEqual(sent, [`referrers/${DIGEST}`, `manifests/sha256-${'a'.repeat(64)}`]);
  assert.equal(got.length, 1);
  assert.equal(got[0]?.digest, entry.digest);
  assert.equal(got[0]?.artifactType, entry.artifactType);

  const image = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: entry, layers: [] });
  const notIndex = await getReferrers(
    routed({ [`manifests/sha256-${'a'.repeat(64)}`]: [200, 'application/vnd.oci.image.manifest.v1+json', image] }, []),
    'xing/app',
    DIGEST,
  );
  assert.deepEqual(notIndex, []);
  assert.deepEqual(await getReferrers(routed({}, []), 'xing/app', DIGEST), [], 'neither the API nor the tag: none');
});

test('a registry with the referrers API is not asked for the tag', async () => {
  const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] });
  const sent: string[] = [];
  assert.deepEqual(
    await getReferrers(routed({ [`referrers/${DIGEST}`]: [200, 'application/vnd.oci.image.index.v1+json', index] }, sent), 'xing/app', DIGEST),
    [],
  );
  assert.deepEqual(sent, [`referrers/${DIGEST}`]);
});

test('an upstream whose referrers route is missing (a plain-text 404) is asked for the tag alone next time; a JSON 404 is not remembered', async () => {
  const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] });
  const tag = `manifests/sha256-${'a'.repeat(64)}`;
  const sent: string[] = [];
  const noRoute = routed({ [tag]: [200, 'application/vnd.oci.image.index.v1+json', index] }, sent, ['text/plain; charset=utf-8', '404 page not found']);
  await getReferrers(noRoute, 'xing/app', DIGEST);
  await getReferrers(noRoute, 'xing/app', DIGEST);
  assert.deepEqual(sent, [`referrers/${DIGEST}`, tag, tag]);

  const registryError: string[] = [];
  const unknownRepo = routed({ [tag]: [200, 'application/vnd.oci.image.index.v1+json', index] }, registryError);
  await getReferrers(unknownRepo, 'xing/app', DIGEST);
  await getReferrers(unknownRepo, 'xing/app', DIGEST);
  assert.deepEqual(registryError, [`referrers/${DIGEST}`, tag, `referrers/${DIGEST}`, tag]);
});
