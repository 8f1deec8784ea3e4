/** @module ports/repository-target — what a request is about, as the ports see it: which repository of which upstream. */

export interface RepositoryTarget {
  /** The upstream the request is routed to, opaque here (upstream/target.ts gives its type); undefined in plain-registry mode. */
  readonly upstream: object | undefined;
  /** Metadata key of the upstream ("" for the local registry). */
  readonly key: string;
  readonly repository: string;
}
