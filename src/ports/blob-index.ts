/** @module ports/blob-index — the port for which blobs this store holds: sizes, last access, pins, the eviction view. */

/** One stored blob as the index knows it. */
export interface BlobEntry {
  readonly size: number;
  readonly lastAccess: number;
}

export interface EvictionView {
  /** `storedAt`: when this store got the blob (absent: long ago). */
  readonly blobs: Array<{ digest: string; size: number; lastAccess: number; storedAt?: number; pinned: boolean }>;
  readonly edges: Array<{ parent: string; child: string }>;
  readonly holders: Array<{ digest: string; upstream: string }>;
}

/**
 * Which blobs this replica holds. Each method is one round trip; none is called per chunk of a
 * transfer (a fill records its blob once, when it is committed). `own*` methods concern only what
 * this replica holds, so start-up reconciliation never forgets a blob another replica still has.
 */
export interface BlobIndex {
  get(digest: string): Promise<BlobEntry | undefined>;
  /** Records a committed blob (or refreshes its access time when already known). */
  put(digest: string, size: number): Promise<void>;
  /** Best effort: a full disk must not fail the read that records an access. */
  touch(digest: string): Promise<void>;
  /** Forgets a digest entirely (blob, manifest rows, links); tags stay and refetch. */
  forget(digest: string): Promise<void>;
  /** Digests this replica holds, for reconciling with its disk. */
  ownDigests(): Promise<string[]>;
  setPinned(digest: string, pinned: boolean): Promise<void>;
  isPinned(digest: string): Promise<boolean>;
  /** Bytes and count of stored blobs (manifests included). */
  usage(): Promise<{ bytes: number; blobs: number }>;
  /** Everything eviction needs in one read. */
  evictionView(): Promise<EvictionView>;
  /** Records that a verified manifest's signature is kept with it (an eviction edge that survives a restart). */
  linkSignature?(digest: string, signature: string): Promise<void>;
  /** The signature linkSignature recorded for a manifest, if any. */
  signatureOf?(digest: string): Promise<string | undefined>;
  /** Gives back the cache memory a one-off large read (the start-up reconciliation) grew. */
  shrinkMemory?(): void;
}
