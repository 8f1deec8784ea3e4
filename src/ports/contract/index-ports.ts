/** @module ports/contract/index-ports — the contract every blob index and repository index implementation must meet. */
import { suite } from './harness.js';
import assert from 'node:assert/strict';
import type { BlobIndex } from '../blob-index.js';
import type { RepositoryIndex } from '../repository-index.js';

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

export function repositoryIndexContract(name: string, open: () => Promise<IndexFixture>): void {
  const withFixture = suite(`${name} repository index`, open);

  withFixture('links are per upstream and repository', async ({ repos }) => {
    assert.equal(await repos.isLinked('u', 'a', d(1)), false);
    await repos.link('u', 'a', d(1));
    await repos.link('u', 'a', d(1));
    assert.equal(await repos.isLinked('u', 'a', d(1)), true);
    assert.equal(await repos.isLinked('u', 'b', d(1)), false);
    assert.equal(await repos.isLinked('v', 'a', d(1)), false);
    await repos.link('u', 'b', d(1));
    assert.deepEqual(await repos.repositoriesWith('u', d(1)), ['a', 'b']);
    assert.equal(await repos.isReferenced(d(1)), true);
    await repos.unlink('u', 'a', d(1));
    await repos.unlink('u', 'b', d(1));
    assert.equal(await repos.isReferenced(d(1)), false);
  });

  withFixture('manifests link their children, list referrers, and delete with their tags', async ({ repos }) => {
    await repos.putManifest('', 'r', { digest: d(9), mediaType: 'm', size: 3, children: [d(1), d(2)] });
    await repos.putManifest('', 'r', { digest: d(8), mediaType: 'a', size: 2, subject: d(9), artifactType: 'sig', children: [] });
    assert.deepEqual(await repos.manifest('', 'r', d(9)), { digest: d(9), mediaType: 'm', size: 3 });
    assert.equal(await repos.manifest('', 'other', d(9)), undefined);
    assert.equal(await repos.isLinked('', 'r', d(1)), true);
    assert.deepEqual((await repos.children(d(9))).sort(), [d(1), d(2)]);
    assert.deepEqual(await repos.parents(d(1)), [d(9)]);
    assert.deepEqual(await repos.referrers('', 'r', d(9)), [{ digest: d(8), mediaType: 'a', size: 2, artifactType: 'sig' }]);
    await repos.setTag('', 'r', 'v1', d(9));
    assert.equal(await repos.deleteManifest('', 'r', d(9)), true);
    assert.equal(await repos.deleteManifest('', 'r', d(9)), false);
    assert.equal(await repos.tag('', 'r', 'v1'), undefined, 'tags pointing at a deleted manifest go with it');
  });

  withFixture('tags: set, touch, page in byte order, delete', async ({ repos, advance }) => {
    await repos.putManifest('u', 'r', { digest: d(1), mediaType: 'm', size: 1, children: [] });
    for (const t of ['b', 'a', 'C', 'c']) await repos.setTag('u', 'r', t, d(1));
    const before = (await repos.tag('u', 'r', 'a'))!;
    advance(500);
    await repos.touchTag('u', 'r', 'a');
    assert.equal((await repos.tag('u', 'r', 'a'))!.checkedAt, before.checkedAt + 500);
    assert.deepEqual(await repos.tags('u', 'r', undefined, 10), ['C', 'a', 'b', 'c']);
    assert.deepEqual(await repos.tags('u', 'r', 'a', 2), ['b', 'c']);
    await repos.deleteTag('u', 'r', 'b');
    assert.deepEqual(await repos.tags('u', 'r', undefined, 10), ['C', 'a', 'c']);
    assert.equal(await repos.hasRepository('u', 'r'), true);
    assert.equal(await repos.hasRepository('u', 'x'), false);
    assert.deepEqual(await repos.allRepositories(), [{ upstream: 'u', repository: 'r' }]);
  });

  withFixture('images and listing name each tag, and untagged manifests no index points at', async ({ blobIndex, repos }) => {
    await blobIndex.put(d(1), 4);
    await repos.putManifest('', 'r', { digest: d(1), mediaType: 'm', size: 4, children: [] });
    await repos.putManifest('', 'r', { digest: d(2), mediaType: 'm', size: 4, children: [] });
    await repos.setTag('', 'r', 'v1', d(1));
    const images = await repos.images('', 100);
    assert.deepEqual(
      images.map((i) => [i.repository, i.tag, i.digest]),
      [
        ['r', null, d(2)],
        ['r', 'v1', d(1)],
      ],
    );
    assert.deepEqual(
      (await repos.images('v1', 100)).map((i) => i.digest),
      [d(1)],
    );
    const listing = await repos.listing();
    assert.equal(listing.length, 2);
    assert.deepEqual(await repos.childSizes(d(1)), []);
  });
}
