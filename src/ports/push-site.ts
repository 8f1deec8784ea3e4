/** @module ports/push-site — the ports between a write and the other replicas of its site, and the cache those replicas fill through. */
import type { ParsedManifest } from '../oci/manifest.js';
import type { RepositoryTarget } from './repository-target.js';
import type { PeerMode } from './fills.js';

/** What a write to one replica of a site may ask of the others; every method is a no-op for a replica alone. */
export interface PushSite<T extends RepositoryTarget> {
  /**
   * Before a write-behind push is acknowledged: another live replica holds every blob and
   * manifest this replica stores for it (listed here), so the push survives this replica's loss.
   * Rejects (UNAVAILABLE) when other replicas are live and none could take the copy.
   */
  secondCopy(target: T, blobs: readonly string[], manifests: ReadonlyArray<{ digest: string; mediaType: string }>): Promise<void>;
  /** Brings a blob another live replica holds (an upload taken there) into this one; false when no replica could. */
  gatherBlob(target: T, digest: string): Promise<boolean>;
  /** The same for a manifest (by digest) of the repository. */
  gatherManifest(target: T, digest: string): Promise<boolean>;
}

/** A blob the cache holds open for its caller: kept from eviction until closed. */
export interface HeldBlob {
  /** Resolves with the final size (waits for a fill without a known size). */
  finalSize(): Promise<number>;
  /** Gives the blob back; call it exactly once. */
  close(): Promise<void>;
}

/** What a site's push side asks of the cache: blobs filled the way every pull is, manifests recorded the way every push is. */
export interface SiteCache<T extends RepositoryTarget> {
  blob(target: T, digest: string, peer?: PeerMode): Promise<HeldBlob>;
  storeManifest(target: T, digest: string, body: Buffer, parsed: ParsedManifest): Promise<void>;
}
