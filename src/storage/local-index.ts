/** @module storage/local-index — the local (SQLite, metadata.db) implementations of the blob index and repository index ports. */
import type { BlobEntry, BlobIndex, EvictionView } from '../ports/blob-index.js';
import type {
  ImageRow,
  ListingRow,
  ManifestRecord,
  NewManifest,
  ReferrerRecord,
  ReferrersQuery,
  RepositoryIndex,
  TagRecord,
} from '../ports/repository-index.js';
import type { MetadataStore } from './metadata.js';

/** Rows per page of ownDigests: a few ms of SQLite each. */
const OWN_PAGE = 5000;

/** One disk, one holder: every blob in metadata.db is this replica's own. */
export class LocalBlobIndex implements BlobIndex {
  constructor(private readonly m: MetadataStore) {}
  async get(digest: string): Promise<BlobEntry | undefined> {
    return this.m.blob(digest);
  }
  async put(digest: string, size: number): Promise<void> {
    this.m.putBlob(digest, size);
  }
  async touch(digest: string): Promise<void> {
    this.m.touchBlob(digest);
  }
  async forget(digest: string): Promise<void> {
    this.m.forget(digest);
  }
  /** In pages, yielding between them: at start-up this runs beside serving, and 100k rows at once held requests for a few hundred ms. */
  async ownDigests(): Promise<string[]> {
    const all: string[] = [];
    for (;;) {
      const page = this.m.blobDigestsAfter(all.at(-1) ?? '', OWN_PAGE);
      all.push(...page);
      if (page.length < OWN_PAGE) return all;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  async setPinned(digest: string, pinned: boolean): Promise<void> {
    this.m.setPinned(digest, pinned);
  }
  async isPinned(digest: string): Promise<boolean> {
    return this.m.isPinned(digest);
  }
  async usage(): Promise<{ bytes: number; blobs: number }> {
    return this.m.usage();
  }
  async evictionView(): Promise<EvictionView> {
    return this.m.evictionView();
  }
  async linkSignature(digest: string, signature: string): Promise<void> {
    this.m.linkSignature(digest, signature);
  }
  async signatureOf(digest: string): Promise<string | undefined> {
    return this.m.signatureOf(digest);
  }
  shrinkMemory(): void {
    this.m.shrinkMemory();
  }
}

export class LocalRepositoryIndex implements RepositoryIndex {
  constructor(private readonly m: MetadataStore) {}
  async isLinked(u: string, r: string, d: string): Promise<boolean> {
    return this.m.isBlobLinked(u, r, d);
  }
  async link(u: string, r: string, d: string): Promise<void> {
    this.m.linkBlob(u, r, d);
  }
  async unlink(u: string, r: string, d: string): Promise<void> {
    this.m.unlinkBlob(u, r, d);
  }
  async repositoriesWith(u: string, d: string, limit?: number): Promise<string[]> {
    return this.m.blobRepositories(u, d, limit);
  }
  async isReferenced(d: string): Promise<boolean> {
    return this.m.isReferenced(d);
  }
  async manifest(u: string, r: string, d: string): Promise<ManifestRecord | undefined> {
    return this.m.manifest(u, r, d);
  }
  async putManifest(u: string, r: string, m: NewManifest): Promise<void> {
    this.m.putManifest(u, r, m);
  }
  async deleteManifest(u: string, r: string, d: string): Promise<boolean> {
    return this.m.deleteManifest(u, r, d);
  }
  async referrers(u: string, r: string, s: string, q: ReferrersQuery): Promise<ReferrerRecord[]> {
    return this.m.referrers(u, r, s, q);
  }
  async children(d: string): Promise<string[]> {
    return this.m.children(d);
  }
  async parents(d: string): Promise<string[]> {
    return this.m.parents(d);
  }
  async childSizes(d: string): Promise<Array<{ child: string; size: number | null }>> {
    return this.m.childSizes(d);
  }
  async tag(u: string, r: string, t: string): Promise<TagRecord | undefined> {
    return this.m.tag(u, r, t);
  }
  async setTag(u: string, r: string, t: string, d: string): Promise<void> {
    this.m.setTag(u, r, t, d);
  }
  async touchTag(u: string, r: string, t: string): Promise<void> {
    this.m.touchTag(u, r, t);
  }
  async deleteTag(u: string, r: string, t: string): Promise<void> {
    this.m.deleteTag(u, r, t);
  }
  async tags(u: string, r: string, last: string | undefined, limit: number): Promise<string[]> {
    return this.m.tags(u, r, last, limit);
  }
  async hasRepository(u: string, r: string): Promise<boolean> {
    return this.m.hasRepository(u, r);
  }
  async allRepositories(): Promise<Array<{ upstream: string; repository: string }>> {
    return this.m.allRepositories();
  }
  async images(q: string, limit: number): Promise<ImageRow[]> {
    return this.m.images(q, limit);
  }
  async listing(): Promise<ListingRow[]> {
    return this.m.listing();
  }
}
