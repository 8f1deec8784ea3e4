/** @module cache/referrers.test — referrers pages bounded by count and bytes with a stable cursor, and the annotation cap that bounds each entry. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { digestOf } from '../oci/digest.js';
import type { OciError } from '../oci/errors.js';
import { MAX_ANNOTATION_BYTES, checkAnnotations, parseManifest } from '../oci/manifest.js';
import { OCI_INDEX, OCI_MANIFEST } from '../oci/mediatypes.js';
import type { UpstreamConfig } from '../config/types.js';
import type { RegistryClient } from '../upstream/client.js';
import { REFERRERS_PAGE_BYTES, REFERRERS_PAGE_COUNT, listReferrers, referrerAnnotations, type ReferrersDeps, type ReferrersRequest } from './referrers.js';
import type { Target } from '../upstream/target.js';
import { testStore } from './cache-testkit.js';

const removers: Array<() => Promise<void>> = [];
after(async () => {
  for (const r of removers) await r();
});

const d = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const SUBJECT = `sha256:${'f'.repeat(64)}`;
const local: Target = { upstream: undefined, key: '', repository: 'r' };
const silent = pino({ level: 'silent' });

async function store(): Promise<Awaited<ReturnType<typeof testStore>> & { deps: ReferrersDeps }> {
  const s = await testStore();
  removers.push(s.remove);
  return { ...s, deps: { blobs: s.blobs, repos: s.ports.repos, logger: silent } };
}

/** Annotations whose JSON is exactly `bytes` long. */
function annotationsOf(bytes: number): Record<string, string> {
  return { note: 'x'.repeat(bytes - '{"note":""}'.length) };
}

interface Listed {
  pages: Array<{ bytes: number; count: number }>;
  descriptors: Array<{ digest: string; artifactType?: string; annotations?: Record<string, string> }>;
}

/** Follows the cursor to the end, checking every page is a well-formed image index within the caps. */
async function walk(deps: ReferrersDeps, target: Target, req: ReferrersRequest = {}, between?: (page: number) => void): Promise<Listed> {
  const out: Listed = { pages: [], descriptors: [] };
  let last = req.last;
  for (let n = 0; n < 10_000; n++) {
    const page = await listReferrers(deps, target, SUBJECT, { ...req, last });
    const text = Buffer.concat(page.body).toString();
    assert.equal(Buffer.byteLength(text), page.length);
    const doc = JSON.parse(text) as { schemaVersion: number; mediaType: string; manifests: Listed['descriptors'] };
    assert.equal(doc.schemaVersion, 2);
    assert.equal(doc.mediaType, OCI_INDEX);
    assert.ok(doc.manifests.length <= REFERRERS_PAGE_COUNT);
    assert.ok(page.length <= REFERRERS_PAGE_BYTES, `page ${n} is ${page.length} bytes`);
    out.pages.push({ bytes: page.length, count: doc.manifests.length });
    out.descriptors.push(...doc.manifests);
    if (page.next === undefined) return out;
    assert.equal(page.next, doc.manifests.at(-1)?.digest, 'the cursor is the last digest listed');
    last = page.next;
    between?.(n);
  }
  throw new Error('no last page');
}

function record(s: Awaited<ReturnType<typeof store>>, n: number, fields: { artifactType?: string; annotations?: string } = {}): void {
  s.metadata.putManifest('', 'r', { digest: d(n), mediaType: OCI_MANIFEST, size: n, subject: SUBJECT, annotations: '', ...fields, children: [] });
}

test('a long referrers list comes in pages of at most 1000, each referrer exactly once, and the cursor survives referrers added meanwhile', async () => {
  const s = await store();
  const total = 2 * REFERRERS_PAGE_COUNT + 5;
  for (let i = 1; i <= total; i++) record(s, i * 10);
  const added: number[] = [];
  const listed = await walk(s.deps, local, {}, (page) => {
    // One before the cursor (not listed on this walk) and one after it (listed once).
    const before = page * 10 + 5;
    const later = total * 10 + page + 1;
    record(s, before);
    record(s, later);
    added.push(later);
  });
  assert.deepEqual(
    listed.pages.map((p) => p.count),
    [REFERRERS_PAGE_COUNT, REFERRERS_PAGE_COUNT, 5 + added.length],
  );
  const digests = listed.descriptors.map((x) => x.digest);
  assert.equal(new Set(digests).size, digests.length, 'no referrer twice');
  const expected = [...Array.from({ length: total }, (_, i) => d((i + 1) * 10)), ...added.map(d)];
  assert.deepEqual(digests, expected.sort());
});

test('referrers with annotations at the cap fill pages of at most 1 MiB; every one is listed once with its annotations', async () => {
  const s = await store();
  const annotations = annotationsOf(MAX_ANNOTATION_BYTES);
  for (let i = 1; i <= 40; i++) record(s, i, { annotations: JSON.stringify(annotations), artifactType: 'application/example' });
  const listed = await walk(s.deps, local);
  assert.ok(listed.pages.length >= 3, `${listed.pages.length} pages`);
  assert.ok(listed.pages.every((p) => p.count >= 1));
  assert.deepEqual(
    listed.descriptors.map((x) => x.digest),
    Array.from({ length: 40 }, (_, i) => d(i + 1)),
  );
  assert.ok(listed.descriptors.every((x) => x.annotations?.['note'] === annotations['note'] && x.artifactType === 'application/example'));
});

test('the artifactType filter holds on every page, and the Link cursor carries it', async () => {
  const s = await store();
  const big = JSON.stringify(annotationsOf(MAX_ANNOTATION_BYTES));
  for (let i = 1; i <= 60; i++) record(s, i, { annotations: big, artifactType: i % 3 === 0 ? 'application/sbom' : 'application/sig' });
  const listed = await walk(s.deps, local, { artifactType: 'application/sbom' });
  assert.ok(listed.pages.length >= 2);
  assert.deepEqual(
    listed.descriptors.map((x) => x.digest),
    Array.from({ length: 20 }, (_, i) => d((i + 1) * 3)),
  );
});

test('a referrer recorded before the index kept annotations is listed from its manifest; one whose manifest is gone is left out', async () => {
  const s = await store();
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/old',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(Buffer.from('{}')), size: 2 },
      layers: [],
      subject: { mediaType: OCI_MANIFEST, digest: SUBJECT, size: 1 },
      annotations: { org: 'kept' },
    }),
  );
  const old = await s.put(body);
  for (const digest of [old.digest, d(1)]) {
    s.metadata.putManifest('', 'r', { digest, mediaType: OCI_MANIFEST, size: old.size, subject: SUBJECT, artifactType: 'application/old', children: [] });
  }
  const listed = await walk(s.deps, local);
  assert.deepEqual(listed.descriptors, [
    { mediaType: OCI_MANIFEST, digest: old.digest, size: old.size, artifactType: 'application/old', annotations: { org: 'kept' } },
  ]);
});

test('a cursor that is not a digest is a 400 DIGEST_INVALID naming the parameter', async () => {
  const s = await store();
  await assert.rejects(listReferrers(s.deps, local, SUBJECT, { last: 'sha256:nope' }), (err: OciError) => {
    assert.equal(err.code, 'DIGEST_INVALID');
    assert.equal(err.status, 400);
    assert.match(err.message, /last/);
    return true;
  });
});

test("the upstream's referrers are merged in digest order, once each, and paged with berth's own", async () => {
  const s = await store();
  for (let i = 1; i <= 30; i += 2) record(s, i, { annotations: JSON.stringify(annotationsOf(MAX_ANNOTATION_BYTES)) });
  // Even digests from the upstream, plus two berth holds too and one repeated: each listed once.
  const theirs = [...Array.from({ length: 15 }, (_, i) => d((i + 1) * 2)), d(1), d(3), d(4)].map((digest) => ({
    mediaType: OCI_MANIFEST,
    digest,
    size: 7,
    annotations: annotationsOf(MAX_ANNOTATION_BYTES),
  }));
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: theirs }));
  const client = {
    name: 'central',
    send: async () => ({
      status: 200,
      headers: { 'content-length': String(index.length) },
      body: Object.assign(Readable.from([index]), { text: async () => index.toString() }),
    }),
  } as unknown as RegistryClient;
  const target: Target = { upstream: { client, config: { name: 'central' } as UpstreamConfig }, key: '', repository: 'r' };
  const listed = await walk(s.deps, target);
  assert.ok(listed.pages.length >= 2);
  assert.deepEqual(
    listed.descriptors.map((x) => x.digest),
    Array.from({ length: 30 }, (_, i) => d(i + 1)),
  );
  assert.equal(listed.descriptors.find((x) => x.digest === d(1))?.annotations?.['note']?.length, annotationsOf(MAX_ANNOTATION_BYTES)['note']!.length);
});

test('annotations are capped at 64 KiB per manifest, counted across its descriptors with its artifactType; a pulled referrer over it is listed without them', () => {
  const manifest = (top: number, layer: number, artifactType = '') =>
    parseManifest(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          ...(artifactType ? { artifactType } : {}),
          config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(Buffer.from('{}')), size: 2 },
          layers: [{ mediaType: 'application/octet-stream', digest: digestOf(Buffer.from('a')), size: 1, annotations: annotationsOf(layer) }],
          annotations: annotationsOf(top),
        }),
      ),
    );
  const typeBytes = Buffer.byteLength('application/vnd.oci.empty.v1+json');
  assert.doesNotThrow(() => checkAnnotations(manifest(MAX_ANNOTATION_BYTES - 1000 - typeBytes, 1000)));
  for (const over of [manifest(MAX_ANNOTATION_BYTES - 1000 - typeBytes, 1001), manifest(MAX_ANNOTATION_BYTES - 1000, 1000, 'application/x')]) {
    assert.throws(
      () => checkAnnotations(over),
      (err: OciError) => err.code === 'MANIFEST_INVALID' && err.status === 400 && /65536 bytes \(64 KiB\)/.test(err.message),
    );
  }
  assert.equal(referrerAnnotations(annotationsOf(MAX_ANNOTATION_BYTES)).length, MAX_ANNOTATION_BYTES);
  assert.equal(referrerAnnotations(annotationsOf(MAX_ANNOTATION_BYTES + 1)), '');
  assert.equal(referrerAnnotations(undefined), '');
});
