/** @module ports/contract/index-ports — the contract every blob index and repository index implementation must meet. */
import { suite } from './harness.js';
import assert from 'node:assert/strict';
import type { BlobIndex } from '../blob-index.js';
import type { ManifestGraph, ManifestRecords, RepositoryIndex, RepositoryLinks, RepositoryListings, TagIndex } from '../repository-index.js';

/** A fresh, empty pair of indexes sharing one backend, a clock the suite moves, and a cleanup. */
export interface IndexFixture {
  readonly blobIndex: BlobIndex;
  readonly repos: RepositoryIndex;
  readonly advance: (ms: number) => void;
  close(): Promise<void>;
}

const d = (n: number) => `sha256:${String(n).padStart(64, '0')}`;

/** Registers the suite under `name`; run it once per implementation (local today, Redis later). */
export function blobIndexContract(name: string, open: () => Promise<IndexFixture>): void {
  const withFixture = suite(`${name} blob index`, open);

  withFixture('put, get, touch and forget a blob', async ({ blobIndex, advance }) => {
    assert.equal(await blobIndex.get(d(1)), undefined);
    await blobIndex.put(d(1), 10);
    const first = await blobIndex.get(d(1));
    assert.equal(first?.size, 10);
    advance(1_000);
    await blobIndex.touch(d(1));
    assert.equal((await blobIndex.get(d(1)))!.lastAccess, first.lastAccess + 1_000);
    await blobIndex.touch(d(2));
    assert.equal(await blobIndex.get(d(2)), undefined, 'touching an unknown blob records nothing');
    assert.deepEqual(await blobIndex.ownDigests(), [d(1)]);
    await blobIndex.forget(d(1));
    assert.equal(await blobIndex.get(d(1)), undefined);
    assert.deepEqual(await blobIndex.ownDigests(), []);
  });

  withFixture('usage, pins and the eviction view', async ({ blobIndex, repos }) => {
    await blobIndex.put(d(1), 10);
    await blobIndex.put(d(2), 5);
    assert.deepEqual(await blobIndex.usage(), { bytes: 15, blobs: 2 });
    assert.equal(await blobIndex.isPinned(d(1)), false);
    await blobIndex.setPinned(d(1), true);
    assert.equal(await blobIndex.isPinned(d(1)), true);
    await repos.putManifest('up', 'r', { digest: d(1), mediaType: 'm', size: 10, children: [d(2)] });
    const view = await blobIndex.evictionView();
    assert.deepEqual(view.blobs.map((b) => [b.digest, b.size, b.pinned]).sort(), [
      [d(1), 10, true],
      [d(2), 5, false],
    ]);
    assert.deepEqual(view.edges, [{ parent: d(1), child: d(2) }]);
    assert.deepEqual(view.holders.map((h) => `${h.upstream}:${h.digest}`).sort(), [`up:${d(1)}`, `up:${d(2)}`]);
  });
}

/**
 * The repository index, role by role: each test exercises every method of one role
 * (links, manifest records, manifest graph, tags, listings), using the others only to set up.
 */
export function repositoryIndexContract(name: string, open: () => Promise<IndexFixture>): void {
  const withFixture = suite(`${name} repository index`, open);

  withFixture('links: per upstream and repository; mount sources; referenced until the last unlink', async ({ repos }) => {
    const links: RepositoryLinks = repos;
    assert.equal(await links.isLinked('u', 'a', d(1)), false);
    await links.link('u', 'a', d(1));
    await links.link('u', 'a', d(1));
    assert.equal(await links.isLinked('u', 'a', d(1)), true);
    assert.equal(await links.isLinked('u', 'b', d(1)), false);
    assert.equal(await links.isLinked('v', 'a', d(1)), false);
    await links.link('u', 'b', d(1));
    await links.link('v', 'c', d(1));
    assert.deepEqual(await links.repositoriesWith('u', d(1)), ['a', 'b']);
    assert.equal((await links.repositoriesWith('u', d(1), 1)).length, 1);
    assert.equal(await links.isReferenced(d(1)), true);
    await links.unlink('u', 'a', d(1));
    await links.unlink('u', 'b', d(1));
    assert.equal(await links.isReferenced(d(1)), true, 'still linked from another upstream');
    await links.unlink('v', 'c', d(1));
    assert.equal(await links.isReferenced(d(1)), false);
  });

  withFixture('manifest records: put links the children, referrers by subject, delete takes the tags along', async ({ repos }) => {
    const records: ManifestRecords = repos;
    await records.putManifest('', 'r', { digest: d(9), mediaType: 'm', size: 3, children: [d(1), d(2)] });
    await records.putManifest('', 'r', { digest: d(8), mediaType: 'a', size: 2, subject: d(9), artifactType: 'sig', children: [] });
    assert.deepEqual(await records.manifest('', 'r', d(9)), { digest: d(9), mediaType: 'm', size: 3 });
    assert.equal(await records.manifest('', 'other', d(9)), undefined);
    assert.equal(await repos.isLinked('', 'r', d(1)), true);
    assert.equal(await repos.isReferenced(d(9)), true, 'a manifest is referenced by the repository holding it');
    const all = { limit: 10 };
    assert.deepEqual(await records.referrers('', 'r', d(9), all), [{ digest: d(8), mediaType: 'a', size: 2, artifactType: 'sig', annotations: null }]);
    assert.deepEqual(await records.referrers('', 'other', d(9), all), []);
    await repos.setTag('', 'r', 'v1', d(9));
    assert.equal(await records.deleteManifest('', 'r', d(9)), true);
    assert.equal(await records.deleteManifest('', 'r', d(9)), false);
    assert.equal(await records.manifest('', 'r', d(9)), undefined);
    assert.equal(await repos.tag('', 'r', 'v1'), undefined, 'tags pointing at a deleted manifest go with it');
  });

  withFixture('referrers: slices in digest order after a cursor, filtered by type, annotations as recorded', async ({ repos }) => {
    for (const n of [5, 3, 7, 4]) {
      const annotations = n === 3 ? '' : `{"n":"${n}"}`;
      await repos.putManifest('', 'r', {
        digest: d(n),
        mediaType: 'm',
        size: n,
        subject: d(9),
        artifactType: n % 2 ? 'odd' : 'even',
        annotations,
        children: [],
      });
    }
    const digests = async (q: Parameters<ManifestRecords['referrers']>[3]) => (await repos.referrers('', 'r', d(9), q)).map((r) => r.digest);
    assert.deepEqual(await digests({ limit: 2 }), [d(3), d(4)]);
    assert.deepEqual(await digests({ after: d(4), limit: 2 }), [d(5), d(7)]);
    assert.deepEqual(await digests({ after: d(7), limit: 2 }), []);
    assert.deepEqual(await digests({ after: d(3), artifactType: 'odd', limit: 5 }), [d(5), d(7)]);
    const [three, four] = await repos.referrers('', 'r', d(9), { limit: 2 });
    assert.equal(Buffer.from(three!.annotations!).toString(), '', 'none recorded');
    assert.equal(Buffer.from(four!.annotations!).toString(), '{"n":"4"}');
  });

  withFixture('manifest graph: children, parents and the sizes of children', async ({ blobIndex, repos }) => {
    const graph: ManifestGraph = repos;
    await blobIndex.put(d(1), 100);
    await repos.putManifest('', 'r', { digest: d(9), mediaType: 'm', size: 3, children: [d(1), d(2)] });
    await repos.putManifest('', 's', { digest: d(7), mediaType: 'm', size: 3, children: [d(1)] });
    assert.deepEqual((await graph.children(d(9))).sort(), [d(1), d(2)]);
    assert.deepEqual(await graph.children(d(1)), []);
    assert.deepEqual((await graph.parents(d(1))).sort(), [d(7), d(9)]);
    assert.deepEqual(
      (await graph.childSizes(d(9))).sort((a, b) => a.child.localeCompare(b.child)),
      [
        { child: d(1), size: 100 },
        { child: d(2), size: null },
      ],
      'a child berth does not hold has no size',
    );
    assert.deepEqual(await graph.childSizes(d(1)), []);
  });

  withFixture('tags: set, touch, page in byte order, delete', async ({ repos, advance }) => {
    const tags: TagIndex = repos;
    await repos.putManifest('u', 'r', { digest: d(1), mediaType: 'm', size: 1, children: [] });
    await repos.putManifest('u', 'r', { digest: d(2), mediaType: 'm', size: 1, children: [] });
    for (const t of ['b', 'a', 'C', 'c']) await tags.setTag('u', 'r', t, d(1));
    const before = (await tags.tag('u', 'r', 'a'))!;
    assert.equal(before.digest, d(1));
    advance(500);
    await tags.touchTag('u', 'r', 'a');
    assert.deepEqual(await tags.tag('u', 'r', 'a'), { digest: d(1), checkedAt: before.checkedAt + 500 });
    await tags.setTag('u', 'r', 'a', d(2));
    assert.equal((await tags.tag('u', 'r', 'a'))!.digest, d(2), 'a tag moves');
    assert.equal(await tags.tag('u', 'other', 'a'), undefined);
    assert.deepEqual(await tags.tags('u', 'r', undefined, 10), ['C', 'a', 'b', 'c']);
    assert.deepEqual(await tags.tags('u', 'r', 'a', 2), ['b', 'c']);
    await tags.deleteTag('u', 'r', 'b');
    assert.deepEqual(await tags.tags('u', 'r', undefined, 10), ['C', 'a', 'c']);
  });

  withFixture('listings: repositories, images (tagged and untagged, filtered) and the berth ls rows', async ({ blobIndex, repos }) => {
    const listings: RepositoryListings = repos;
    assert.deepEqual(await listings.allRepositories(), []);
    await blobIndex.put(d(1), 4);
    await repos.putManifest('', 'r', { digest: d(1), mediaType: 'm', size: 4, children: [] });
    await repos.putManifest('', 'r', { digest: d(2), mediaType: 'm', size: 4, children: [] });
    await repos.putManifest('u', 'a', { digest: d(3), mediaType: 'm', size: 4, children: [] });
    await repos.setTag('', 'r', 'v1', d(1));
    assert.equal(await listings.hasRepository('', 'r'), true);
    assert.equal(await listings.hasRepository('', 'x'), false);
    assert.equal(await listings.hasRepository('u', 'r'), false, 'repositories are per upstream');
    assert.deepEqual(await listings.allRepositories(), [
      { upstream: 'u', repository: 'a' },
      { upstream: '', repository: 'r' },
    ]);
    const images = await listings.images('', 100);
    assert.deepEqual(
      images.filter((i) => i.upstream === '').map((i) => [i.repository, i.tag, i.digest]),
      [
        ['r', null, d(2)],
        ['r', 'v1', d(1)],
      ],
    );
    assert.deepEqual(
      (await listings.images('v1', 100)).map((i) => i.digest),
      [d(1)],
    );
    const listing = await listings.listing();
    assert.equal(listing.length, 3);
    const tagged = listing.find((l) => l.tag === 'v1');
    assert.deepEqual([tagged?.repository, tagged?.digest, tagged?.size], ['r', d(1), 4]);
  });
}
