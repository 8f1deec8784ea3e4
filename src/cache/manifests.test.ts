/** @module cache/manifests.test — an upstream's passing 500 on a manifest request is retried, not passed on as a 502; an oversized one is refused. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { digestOf } from '../oci/digest.js';
import { OCI_MANIFEST } from '../oci/mediatypes.js';
import { MAX_MANIFEST_BYTES, type OciError } from '../oci/errors.js';
import type { UpstreamConfig } from '../config/types.js';
import type { RegistryClient } from '../upstream/client.js';
import { ManifestCache } from './manifests.js';
import type { Target } from '../upstream/target.js';
import { testStore } from './cache-testkit.js';

const removers: Array<() => Promise<void>> = [];
after(async () => {
  for (const r of removers) await r();
});

const body = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(Buffer.from('{}')), size: 2 },
    layers: [],
  }),
);
const digest = digestOf(body);

/** Answers `failures` requests with 500, then serves the manifest (or `served`); counts requests. */
function flaky(failures: number, served = body): { target: Target; requests: string[] } {
  const requests: string[] = [];
  const client = {
    name: 'central',
    breaker: { state: 'up' },
    send: async (req: { method: string; path: string }) => {
      requests.push(`${req.method} ${req.path}`);
      const fail = requests.length <= failures;
      const data = fail || req.method === 'HEAD' ? [] : [served];
      const stream = Readable.from(data);
      return {
        status: fail ? 500 : 200,
        headers: fail ? {} : { 'content-type': OCI_MANIFEST, 'docker-content-digest': digest, 'content-length': String(served.length) },
        body: Object.assign(stream, {
          dump: async () => {
            stream.resume();
          },
        }),
      };
    },
  } as unknown as RegistryClient;
  const config = { name: 'central', tagttlMs: 0 } as unknown as UpstreamConfig;
  return { target: { upstream: { client, config }, key: 'central', repository: 'lib/app' }, requests };
}

test('a manifest GET answered 500 twice is retried and then served', async () => {
  const store = await testStore();
  removers.push(store.remove);
  const cache = new ManifestCache({ blobs: store.blobs, ...store.ports, logger: pino({ level: 'silent' }), now: Date.now });
  const up = flaky(2);
  const got = await cache.get(up.target, { kind: 'digest', digest });
  assert.equal(got.digest, digest);
  assert.equal(got.outcome, 'miss');
  assert.deepEqual(up.requests, [`GET manifests/${digest}`, `GET manifests/${digest}`, `GET manifests/${digest}`]);
});

test('a tag whose upstream keeps answering 500 is a 502 after the retries, not a hang', async () => {
  const store = await testStore();
  removers.push(store.remove);
  const cache = new ManifestCache({ blobs: store.blobs, ...store.ports, logger: pino({ level: 'silent' }), now: Date.now });
  const up = flaky(100);
  await assert.rejects(cache.get(up.target, { kind: 'tag', tag: 'latest' }), (err: { code?: string; status?: number }) => err.code === 'UNAVAILABLE');
  assert.equal(up.requests.length, 3);
});

test('a manifest from upstream over 4 MiB gets the one oversized-manifest answer: 413 MANIFEST_INVALID', async () => {
  const store = await testStore();
  removers.push(store.remove);
  const cache = new ManifestCache({ blobs: store.blobs, ...store.ports, logger: pino({ level: 'silent' }), now: Date.now });
  const up = flaky(0, Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20));
  await assert.rejects(cache.get(up.target, { kind: 'tag', tag: 'huge' }), (err: OciError) => {
    assert.deepEqual([err.code, err.status, err.detail], ['MANIFEST_INVALID', 413, { limit: MAX_MANIFEST_BYTES }]);
    assert.match(err.message, /^manifest lib\/app:huge from upstream central exceeds the limit/);
    return true;
  });
});
