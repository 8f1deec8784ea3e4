/** @module ports/repository-index — the port for what each repository holds: blob links, manifests, tags, listings. */

export interface ManifestRecord {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
}

export interface TagRecord {
  readonly digest: string;
  readonly checkedAt: number;
}

export interface NewManifest extends ManifestRecord {
  readonly subject?: string;
  readonly artifactType?: string;
  /**
   * The manifest's annotations as JSON text, kept for a referrer so its listing needs no read of
   * the manifest: '' for none; absent when the caller did not say (listed from the manifest then).
   */
  readonly annotations?: string;
  /** Digests of the blobs and child manifests this manifest references. */
  readonly children: readonly string[];
}

/** A referrer as the index records it: enough to list it without reading its manifest. */
export interface ReferrerRecord extends ManifestRecord {
  readonly artifactType: string | null;
  /**
   * Its annotations as JSON (UTF-8 bytes: a page is assembled from them without a string copy),
   * empty for none; null when not recorded (read them from the manifest).
   */
  readonly annotations: Uint8Array | null;
}

/** One slice of a subject's referrers, in digest order (a cursor that new referrers never shift). */
export interface ReferrersQuery {
  /** Only digests after this one. */
  readonly after?: string;
  readonly artifactType?: string;
  readonly limit: number;
}

export interface ImageRow {
  readonly upstream: string;
  readonly repository: string;
  readonly tag: string | null;
  readonly digest: string;
  readonly mediaType: string;
  readonly lastPull: number | null;
  readonly pinned: number;
}

export interface ListingRow {
  readonly upstream: string;
  readonly repository: string;
  readonly tag: string | null;
  readonly digest: string | null;
  readonly size: number | null;
  readonly lastAccess: number | null;
}

/*
 * Repository records keyed by upstream ("" for the local registry) + repository. Shared by every
 * replica of a site: rows never name a process. One backend implements all five roles below;
 * each caller depends only on the roles it uses.
 */

/** Which repositories may see a blob (visibility, mount sources, eviction's "still referenced"). */
export interface RepositoryLinks {
  isLinked(upstream: string, repository: string, digest: string): Promise<boolean>;
  link(upstream: string, repository: string, digest: string): Promise<void>;
  unlink(upstream: string, repository: string, digest: string): Promise<void>;
  /** Repositories of an upstream known to hold a blob (mount sources when pushing upstream). */
  repositoriesWith(upstream: string, digest: string, limit?: number): Promise<string[]>;
  /** Whether any repository still links the digest or holds it as a manifest. */
  isReferenced(digest: string): Promise<boolean>;
}

/** The manifests a repository holds, and the referrers of a subject there. */
export interface ManifestRecords {
  manifest(upstream: string, repository: string, digest: string): Promise<ManifestRecord | undefined>;
  /** Records a verified manifest, with the blobs it references linked to the repository too. */
  putManifest(upstream: string, repository: string, m: NewManifest): Promise<void>;
  /** Removes a manifest and the tags there that point at it; true when it was there. */
  deleteManifest(upstream: string, repository: string, digest: string): Promise<boolean>;
  referrers(upstream: string, repository: string, subject: string, query: ReferrersQuery): Promise<ReferrerRecord[]>;
}

/** What manifests reference, in any repository: an index's children, a blob's parents. */
export interface ManifestGraph {
  children(digest: string): Promise<string[]>;
  parents(digest: string): Promise<string[]>;
  childSizes(digest: string): Promise<Array<{ child: string; size: number | null }>>;
}

/** Tags: where each points and when the upstream last confirmed it. */
export interface TagIndex {
  tag(upstream: string, repository: string, tag: string): Promise<TagRecord | undefined>;
  setTag(upstream: string, repository: string, tag: string, digest: string): Promise<void>;
  /** Marks a tag as confirmed upstream now, without changing where it points. */
  touchTag(upstream: string, repository: string, tag: string): Promise<void>;
  deleteTag(upstream: string, repository: string, tag: string): Promise<void>;
  /** Tags in byte order after `last`, at most `limit`. */
  tags(upstream: string, repository: string, last: string | undefined, limit: number): Promise<string[]>;
}

/** Whole-store listings: the catalog, the admin API's images, `berth ls`. */
export interface RepositoryListings {
  hasRepository(upstream: string, repository: string): Promise<boolean>;
  /** Every (upstream, repository) holding at least one manifest, ordered by repository. */
  allRepositories(): Promise<Array<{ upstream: string; repository: string }>>;
  /** Images for the admin API; `q` filters on upstream/repository:tag@digest. */
  images(q: string, limit: number): Promise<ImageRow[]>;
  /** Cached repositories with their tags, for `berth ls`. */
  listing(): Promise<ListingRow[]>;
}

/** Every role at once: what a backend implements and the composition root hands out. */
export interface RepositoryIndex extends RepositoryLinks, ManifestRecords, ManifestGraph, TagIndex, RepositoryListings {}
