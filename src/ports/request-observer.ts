/** @module ports/request-observer — what the server reports about each request once it is over (metrics hook in here). */
/** How a request was answered, reported in the access log. */
export type Outcome = 'hit' | 'miss' | 'joined' | 'stale' | 'local';

export interface RequestRecord {
  /** Route kind (`manifest`, `blob`, `tags`, …) or `api`, `metrics`, `health`, `other`. */
  readonly route: string;
  readonly method: string;
  readonly status: number;
  readonly outcome: Outcome | undefined;
  /** Upstream name when the request was routed to one. */
  readonly upstream: string | undefined;
  /** Manifest and blob body bytes sent (0 for other responses); each was reported to `served` already. */
  readonly bodyBytes: number;
  readonly seconds: number;
}

export interface RequestObserver {
  /** Once per request, when its response is over. */
  request(record: RequestRecord): void;
  /** As manifest and blob bytes go out, so byte counts are live during long transfers; `kernel` when sendfile moved them. */
  served(route: string, outcome: Outcome | undefined, bytes: number, kernel?: boolean): void;
}
