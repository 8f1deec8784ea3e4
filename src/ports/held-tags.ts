/** @module ports/held-tags — the port for tags whose local record wins over the upstream's. */

/** Why a tag is held locally: pushed in local mode (for good), or waiting for replication. */
export type HoldReason = 'local' | 'replicating';

export interface HeldTags {
  hold(upstream: string, repository: string, tag: string, digest: string, reason: HoldReason): Promise<void>;
  release(upstream: string, repository: string, tag: string): Promise<void>;
  /** Releases every tag of the repository that points at the digest. */
  releaseTagsOf(upstream: string, repository: string, digest: string): Promise<void>;
  isHeld(upstream: string, repository: string, tag: string): Promise<boolean>;
  /** The digest a held tag points at (the newest push of it), or undefined when the tag is not held. */
  heldDigest(upstream: string, repository: string, tag: string): Promise<string | undefined>;
  heldTags(upstream: string, repository: string): Promise<string[]>;
}
