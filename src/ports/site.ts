/** @module ports/site — the ports for what a site's replicas coordinate, by role: who is alive, who fills a digest, who holds it, what a tag points at, who took an upload. */

/** A live replica: its id is the URL the others reach it at (`cluster.advertise`). */
export interface Member {
  readonly url: string;
  /** Until when its last heartbeat keeps it alive (ms since epoch). */
  readonly until: number;
}

/** The right to fill one digest from the upstream. `token` only grows: a lapsed holder's later calls are refused. */
export interface FillLease {
  readonly digest: string;
  readonly owner: string;
  readonly token: number;
}

export interface SharedTag {
  readonly digest: string;
  readonly checkedAt: number;
}

/*
 * Every method is one round trip and may fail (Redis unreachable): callers treat a failure as
 * "alone" and go on, so no request fails because of coordination. None is called per chunk.
 * One backend implements all five roles below; each caller depends only on the roles it uses.
 */

/** The replica a role acts for: what it records as owner or holder, and how it finds itself among the others. */
export interface SiteReplica {
  /** This replica's id (its advertise URL). */
  readonly self: string;
}

/** Who is alive in the site. */
export interface SiteMembership extends SiteReplica {
  /** Announces this replica alive for `ttlMs`. */
  heartbeat(ttlMs: number): Promise<void>;
  leave(): Promise<void>;
  /** Replicas whose heartbeat has not lapsed, this one included once it has announced itself. */
  members(): Promise<Member[]>;
}

/** One upstream fill per digest in the site: the lease, fenced by its token. */
export interface FillLeases extends SiteReplica {
  /** Takes the fill lease of a digest for `ttlMs`, or says who has it. */
  acquireFill(digest: string, ttlMs: number): Promise<{ lease: FillLease } | { owner: string }>;
  /** Takes the lease from `owner` (a dead replica), only if it still has it. */
  takeOverFill(digest: string, owner: string, ttlMs: number): Promise<FillLease | undefined>;
  /** Extends a lease while bytes arrive; false when it was lost (lapsed and taken). */
  renewFill(lease: FillLease, ttlMs: number): Promise<boolean>;
  releaseFill(lease: FillLease): Promise<void>;
  /** Who holds the fill lease of a digest now. */
  fillOwner(digest: string): Promise<string | undefined>;
}

/** Which replicas hold a blob: the byte sources beside the upstream. */
export interface BlobHolders extends SiteReplica {
  /** This replica holds the digest (after verify and fsync). */
  addHolder(digest: string): Promise<void>;
  /** The same for many digests in few round trips (re-announcing a store after Redis came back). */
  addHolders(digests: readonly string[]): Promise<void>;
  /** This replica no longer holds it (before its file is unlinked). */
  removeHolder(digest: string): Promise<void>;
  /** Replicas recorded as holding the digest (live or not: callers intersect with members()). */
  holders(digest: string): Promise<string[]>;
}

/** The site's tag records, and one upstream check per tag per site. */
export interface TagRecords {
  /** The site's record of a tag: where it points and when the upstream last confirmed it. */
  tag(upstream: string, repository: string, tag: string): Promise<SharedTag | undefined>;
  putTag(upstream: string, repository: string, tag: string, record: SharedTag): Promise<void>;
  /** The right to ask the upstream about a tag for `ttlMs`: one check per tag per site. */
  claimTagCheck(upstream: string, repository: string, tag: string, ttlMs: number): Promise<boolean>;
}

/** Which replica took an upload (its bytes are there): the others forward its requests. */
export interface UploadOwners extends SiteReplica {
  /** This replica took an upload for `ttlMs`. */
  recordUpload(id: string, ttlMs: number): Promise<void>;
  forgetUpload(id: string): Promise<void>;
  uploadOwner(id: string): Promise<string | undefined>;
}

/** Every role at once, and the connection behind them: what a backend implements and a replica opens. */
export interface SiteCoordination extends SiteMembership, FillLeases, BlobHolders, TagRecords, UploadOwners {
  close(): Promise<void>;
}
