/** @module fleet/hub-protocol — what a site sends its hub on each poll and what the hub answers (JSON over HTTPS, site → hub only). */

/** One pre-heat a site is asked to do. */
export interface SiteTask {
  /** The hub's id for this site's part of a job, `<job>/<site>`. */
  readonly taskId: string;
  /** `[registry/]repository[:tag|@digest]`, routed by the site as any pull would be. */
  readonly image: string;
}

export interface TaskResult {
  readonly taskId: string;
  readonly ok: boolean;
  /** Why it failed, as the site's warm-up job said. */
  readonly error?: string;
  /** The manifest digest the image resolved to at the site. */
  readonly digest?: string;
  /** Bytes the site drew from its upstream for this task (0: it had everything). */
  readonly bytesFetched: number;
  readonly bytesTotal: number;
}

/** A site's state, as the hub shows it under GET /api/v1/sites. */
export interface SiteReport {
  readonly name: string;
  readonly version: string;
  /** The site's poll interval; three missed ones make it stale. */
  readonly intervalMs: number;
  readonly store: { readonly bytes: number; readonly limit: number; readonly blobs: number };
  readonly images: number;
  /** Bytes received from each upstream since the site started. */
  readonly wanBytes: Readonly<Record<string, number>>;
  readonly upstreams: ReadonlyArray<{ readonly name: string; readonly state: string; readonly lastError: string | null }>;
  /** Recent problems (failed warm-ups and pre-heats). */
  readonly errors: readonly string[];
  /** The blobs the site holds, as a hash of the list it would send (fleet/held.ts); the list goes separately. */
  readonly held?: { readonly hash: string; readonly count: number };
  /** The site's recent warm-up jobs, newest first. */
  readonly jobs: ReadonlyArray<{
    readonly id: string;
    readonly state: string;
    readonly images: readonly string[];
    readonly bytesFetched: number;
    readonly finishedAt: number | null;
  }>;
}

export interface PollRequest {
  readonly report: SiteReport;
  /** Tasks finished since the last poll. */
  readonly results: readonly TaskResult[];
  /** Tasks still in progress at the site (the hub re-sends any it thinks running that are not listed). */
  readonly working: readonly string[];
}

export interface PollResponse {
  readonly tasks: readonly SiteTask[];
  /** Sent while the hub is loaded: the site waits this long (ms) before its next poll instead of its interval. */
  readonly retryAfterMs?: number;
  /** The hash of the held list the hub keeps for the site (null: none); the site sends its list when its own differs. */
  readonly heldHash?: string | null;
}
