/** @module ports/manifest-site — the port through which a site's replicas share tag checks and manifest bytes. */
import type { RepositoryTarget } from './repository-target.js';

/** What a site of several replicas shares for manifests; every call may fail (then this replica checks alone). */
export interface ManifestSite {
  tag(target: RepositoryTarget, tag: string): Promise<{ digest: string; checkedAt: number } | undefined>;
  publish(target: RepositoryTarget, tag: string, digest: string, checkedAt: number): Promise<void>;
  /** The right to ask the upstream about this tag now; false: another replica is asking. */
  claimCheck(target: RepositoryTarget, tag: string): Promise<boolean>;
  /** Manifest bytes from a replica that holds them (unverified: the caller checks the digest). */
  fetch(target: RepositoryTarget, digest: string): Promise<Buffer | undefined>;
}
