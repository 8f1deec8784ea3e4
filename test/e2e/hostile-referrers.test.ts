/** @module e2e/hostile-referrers.test — the largest referrers set berth accepts, listed by four clients at once: pages within their caps, each referrer once, memory bounded, /healthz answering. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { assertError, call, type Answer, digestOf, makeManifest, pushManifest, uploadBlob, OCI_INDEX, OCI_MANIFEST } from '../fixtures/oci-http.js';
import { readStatus } from '../../bench/memory.js';
import { treePids } from '../../bench/anchors.js';
import { MAX_ANNOTATION_BYTES } from '../../src/oci/manifest.js';
import { REFERRERS_PAGE_BYTES, REFERRERS_PAGE_COUNT } from '../../src/cache/referrers.js';

/**
 * What four concurrent walks of the whole set may add to the peak RSS of the process tree (a
 * primary and two serving workers; docs/security.md, Request limits): each request holds one page and one
 * batch of index rows, a couple of MiB, and each worker's heap settles some tens of MiB higher.
 */
const WALK_RSS_BOUND_MIB = 128;
const REPO = 'lots/of-referrers';
const ARTIFACT_TYPE = 'application/vnd.example.signature';
/** More than a page holds by count, every one at the annotation cap. */
const REFERRERS = REFERRERS_PAGE_COUNT + 24;

let berth: Berth;
let subject: { digest: string; size: number };
let emptyConfig: string;

before(async () => {
  berth = await startBerth({ config: { version: 0.1, http: { workers: 2 } } });
  const image = makeManifest(randomBytes(100), [randomBytes(1000)]);
  assert.equal((await pushManifest(berth.url, REPO, image, 'v1')).status, 201);
  subject = { digest: image.digest, size: image.bytes.length };
  emptyConfig = await uploadBlob(berth.url, REPO, Buffer.from('{}'));
});

after(async () => {
  await berth?.stop();
});

/** A referrer of the subject whose annotations and artifactType together take `bytes`. */
function referrer(n: number, bytes = MAX_ANNOTATION_BYTES): Buffer {
  const id = String(n).padStart(8, '0');
  const fixed = Buffer.byteLength(JSON.stringify({ 'org.example.n': id, 'org.example.pad': '' })) + Buffer.byteLength(ARTIFACT_TYPE);
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: ARTIFACT_TYPE,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyConfig, size: 2 },
    layers: [],
    subject: { mediaType: OCI_MANIFEST, ...subject },
    annotations: { 'org.example.n': id, 'org.example.pad': 'x'.repeat(bytes - fixed) },
  };
  return Buffer.from(JSON.stringify(doc));
}

async function putManifest(body: Buffer): Promise<Answer> {
  return call(berth.url, 'PUT', `/v2/${REPO}/manifests/${digestOf(body)}`, { body, headers: { 'content-type': OCI_MANIFEST } });
}

/** The process tree's RSS now and at its peak, in KiB. */
async function treeMemory(pids: readonly number[]): Promise<{ rss: number; hwm: number }> {
  let rss = 0;
  let hwm = 0;
  for (const pid of pids) {
    const s = await readStatus(pid);
    rss += s?.rssKiB ?? 0;
    hwm += s?.hwmKiB ?? 0;
  }
  return { rss, hwm };
}

/** Follows Link to the end; returns every digest listed and the largest page. */
async function walk(): Promise<{ digests: string[]; pages: number; largest: number }> {
  const digests: string[] = [];
  let next: string | undefined = `/v2/${REPO}/referrers/${subject.digest}`;
  let pages = 0;
  let largest = 0;
  while (next !== undefined) {
    const page = await call(berth.url, 'GET', next);
    assert.equal(page.status, 200, page.body.toString().slice(0, 300));
    assert.match(page.header('content-type') ?? '', /^application\/vnd\.oci\.image\.index\.v1\+json/);
    const doc = page.json<{ mediaType: string; manifests: Array<{ digest: string; artifactType: string; annotations: Record<string, string> }> }>();
    assert.equal(doc.mediaType, OCI_INDEX);
    assert.ok(doc.manifests.length >= 1 && doc.manifests.length <= REFERRERS_PAGE_COUNT);
    assert.ok(doc.manifests.every((m) => m.artifactType === ARTIFACT_TYPE && m.annotations['org.example.pad']!.length > 60_000));
    digests.push(...doc.manifests.map((m) => m.digest));
    largest = Math.max(largest, page.body.length);
    pages++;
    const link = page.header('link');
    next = link === undefined ? undefined : /^<([^>]+)>; rel="next"$/.exec(link)?.[1];
    if (link !== undefined) assert.ok(next, `Link header "${link}"`);
  }
  return { digests, pages, largest };
}

test('a manifest whose annotations exceed 64 KiB is refused 400 MANIFEST_INVALID naming the cap; one at the cap is accepted', async () => {
  const over = await putManifest(referrer(0, MAX_ANNOTATION_BYTES + 1));
  assertError(over, 400, 'MANIFEST_INVALID');
  assert.match(over.body.toString(), /65536 bytes \(64 KiB\)/);
  // The size from the report: 3.9 MB of annotations in a manifest under the 4 MiB limit.
  assert.equal((await putManifest(referrer(0, 3_900_000))).status, 400);
  assert.equal((await putManifest(referrer(0))).status, 201);
});

test(`${REFERRERS} referrers at the annotation cap, listed by four clients at once: each once, pages within 1 MiB, /healthz answers, RSS bounded`, async () => {
  const expected = new Set<string>();
  const lanes = 4;
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let n = lane; n < REFERRERS; n += lanes) {
        const body = referrer(n);
        const put = await putManifest(body);
        assert.equal(put.status, 201, put.body.toString());
        expected.add(digestOf(body));
      }
    }),
  );
  const pids = await treePids(berth.service.pid);
  // Peaks counted from here: the pushes before are not what is measured (clear_refs 5 resets VmHWM).
  for (const pid of pids) await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined);
  const before = await treeMemory(pids);

  let walking = true;
  const health: number[] = [];
  const probe = (async () => {
    while (walking) health.push((await call(berth.url, 'GET', '/healthz')).status);
  })();
  const walks = await Promise.all([walk(), walk(), walk(), walk()]).finally(() => {
    walking = false;
  });
  await probe;
  const peak = await treeMemory(pids);

  for (const w of walks) {
    assert.equal(w.digests.length, expected.size, 'every referrer listed, none twice');
    assert.deepEqual(new Set(w.digests), expected);
    assert.ok(w.pages >= Math.ceil((expected.size * MAX_ANNOTATION_BYTES) / REFERRERS_PAGE_BYTES), `${w.pages} pages`);
    assert.ok(w.largest <= REFERRERS_PAGE_BYTES, `largest page ${w.largest} bytes`);
  }
  assert.ok(health.length > 0 && health.every((s) => s === 200), `/healthz answers while the lists are read: ${health.join(',')}`);
  const grewMiB = (peak.hwm - before.rss) / 1024;
  console.log(
    `tree RSS before ${(before.rss / 1024).toFixed(0)} MiB, peak ${(peak.hwm / 1024).toFixed(0)} MiB (+${grewMiB.toFixed(0)}); ${walks[0].pages} pages each; ${health.length} health checks`,
  );
  assert.ok(grewMiB < WALK_RSS_BOUND_MIB, `four walks grew the tree's peak RSS by ${grewMiB.toFixed(0)} MiB`);
});
