/**
 * @module ports/hub-state — where a fleet hub keeps what must outlive it: pre-heat jobs with every
 * site's part, each site's last report, and the job id sequence (SQLite in the hub's store by default).
 */

export type PartState = 'pending' | 'running' | 'success' | 'failure';

/** One site's part of a job. */
export interface StoredPart {
  readonly site: string;
  readonly state: PartState;
  readonly error: string | null;
  readonly digest: string | null;
  readonly bytesFetched: number;
  readonly bytesTotal: number;
  readonly finishedAt: number | null;
}

export interface StoredJob {
  readonly id: number;
  /** `[registry/]repository[:tag|@digest]` as sites route it. */
  readonly image: string;
  /** The manifest digest, when the caller named it (duplicates are found by it). */
  readonly digest: string | null;
  /** harbor (current provider API), harbor-v1 (2.1-era), event, api. */
  readonly source: string;
  readonly selector: string;
  /** The manifest URL Harbor sent, for its result table (the image reference for other sources). */
  readonly url: string;
  readonly createdAt: number;
  readonly finishedAt: number | null;
  /** Why the job failed as a whole (e.g. no site matched). */
  readonly error: string | null;
}

export interface StoredSite {
  readonly name: string;
  /** The site's last report, as it sent it. */
  readonly report: Readonly<Record<string, unknown>>;
  /** When that report arrived. */
  readonly at: number;
  readonly firstSeen: number;
}

/** What a hub writes in one go after a poll or a job's creation: applied whole or not at all. */
export interface HubWrite {
  readonly sites?: readonly StoredSite[];
  /**
   * When sites whose report did not change last polled: applied after `sites`, to sites stored
   * before; a time older than the one stored is ignored. Written in batches, a row each.
   */
  readonly seen?: ReadonlyArray<{ readonly name: string; readonly at: number }>;
  readonly jobs?: readonly StoredJob[];
  /**
   * A new job's parts, all pending (no error, nothing fetched), by site name: applied before `parts`,
   * so a part written in `parts` too ends in that state. One list per job keeps a fan-out cheap.
   */
  readonly pendingParts?: ReadonlyArray<{ readonly job: number; readonly sites: readonly string[] }>;
  readonly parts?: ReadonlyArray<{ readonly job: number; readonly part: StoredPart }>;
  /** Jobs forgotten with their parts (finished ones beyond what the hub keeps). */
  readonly deleteJobs?: readonly number[];
}

export interface HubState extends HeldStore {
  /** The next job id: never one handed out before, across restarts; `floor` seeds a new sequence. */
  nextJobId(floor: number): Promise<number>;
  /** Inserts or replaces the rows named (sites by name, jobs by id, parts by job and site). */
  write(w: HubWrite): Promise<void>;
  /** Everything kept, jobs in id order with their parts, sites by name. */
  load(): Promise<{ readonly sites: StoredSite[]; readonly jobs: Array<StoredJob & { readonly parts: StoredPart[] }> }>;
  close(): Promise<void>;
  /**
   * Results that hubs not leading took while no lead answered (hub replicas only), oldest first, at
   * most `max`; `done()` drops them once the lead has written what they changed.
   */
  inbox?(max: number): Promise<{ readonly entries: readonly InboxEntry[]; done(): Promise<void> }>;
  /** How many entries the inbox holds (with `inbox`): the lead reads it before it hands a site tasks. */
  inboxLength?(): Promise<number>;
}

/** A site's finished tasks as its poll carried them (fleet/hub-protocol.ts TaskResult), kept for the next lead. */
export interface InboxEntry {
  readonly site: string;
  readonly results: ReadonlyArray<Record<string, unknown>>;
}

/**
 * The blobs a site last said it holds (docs/design.md §12, held blobs): sha256 digests as 32 raw bytes
 * each, in the order the site sent them, and the hash of the list as the site computed it.
 */
export interface HeldSet {
  readonly hash: string;
  readonly at: number;
  readonly count: number;
  readonly digests: Buffer;
}

export interface HeldStore {
  /** The hash of the set stored for the site, or undefined when it has none. */
  heldHash(site: string): Promise<string | undefined>;
  /** Replaces the site's set. */
  putHeld(site: string, set: HeldSet): Promise<void>;
  held(site: string): Promise<HeldSet | undefined>;
}
