/** @module ports/fills — the ports for fills: one filler per digest (everyone else follows it), and where a fill's bytes come from on a site. */
import type { RepositoryTarget } from './repository-target.js';

/** A claim on one digest: the winner fills, every other claimant follows `fill`. */
export type FillClaim<F> = { readonly role: 'filler'; readonly fill: F } | { readonly role: 'follower'; readonly fill: F };

export interface FillCoordinator<F> {
  /** Claims a digest: starts (with `start`) when nobody fills it, else joins the fill in progress. */
  claim(digest: string, start: () => F): FillClaim<F>;
  /** The fill in progress for a digest, if any (to follow it without starting one). */
  current(digest: string): F | undefined;
  /** The filler is done (verified, failed, or can no longer be followed): later claims start afresh. */
  finish(digest: string, fill: F): void;
  /** How many digests are being filled now, and which. */
  readonly size: number;
  digests(): string[];
}

/**
 * How a request from another replica of the site may be answered: `held` only from what this
 * replica stores or is filling now; `fill` may fill it here too, but never forwards to a third;
 * `range` (one byte range of a blob) as a client's range is, from local bytes or the upstream,
 * never from a third.
 */
export type PeerMode = 'held' | 'fill' | 'range';

/** One byte source beside the upstream: a peer replica, chosen per attempt of a fill. */
export interface FillRouter {
  /** The body from byte `offset` on; calls `upstream` when this replica should fetch it itself. */
  open(req: {
    readonly target: RepositoryTarget;
    readonly digest: string;
    readonly offset: number;
    /** The fill serves another replica's request: it must not be forwarded again. */
    readonly fromPeer: boolean;
    readonly upstream: (offset: number) => Promise<AsyncIterable<Uint8Array>>;
    /** For bodies from a peer: the size it announced (offset 0 only). */
    readonly markReady: (size: number | undefined) => void;
    /** This fill's temp file: the other workers of this host follow it while it grows. */
    readonly tempPath: string;
    /** The size known so far (once the upstream answered). */
    readonly size: () => number | undefined;
    /** Throws unless the requesting repository may see the digest (as before joining a fill here). */
    readonly visible: () => Promise<void>;
    /**
     * Before the first byte: make this fill's temp file another name of `path`, the file another
     * worker writes the blob into, so it is written once. False when that cannot be done (the
     * fill then writes its own copy).
     */
    readonly share?: (path: string) => Promise<boolean>;
    /** This fill writes its bytes itself again (it takes over from the worker it shared with). */
    readonly own?: () => void;
    /** Whether this fill's temp file is shared (see share). */
    readonly shared?: () => boolean;
  }): Promise<AsyncIterable<Uint8Array>>;
  /** Whether an error of a peer transfer is worth another attempt even before any byte arrived. */
  retriable(err: unknown): boolean;
  /** The fill ended (stored, passed through or failed): its lease, if any, is released. */
  finished(digest: string): void;
  /** Whether another worker of this host fills the digest now (a peer's `held` request may then join it). */
  filling?(digest: string): Promise<boolean>;
  /** Single-flight of upstream range fetches with the other workers of this host, if any. */
  readonly ranges?: RangeCoordinator;
  /**
   * Bytes [start, end] of a blob not held whole, from the replica of the site that fetches this
   * digest's ranges, so the site asks the upstream for them once; undefined when that is this
   * replica or none answers (the range is then fetched here).
   */
  range?(req: {
    readonly target: RepositoryTarget;
    readonly digest: string;
    readonly start: number;
    readonly end: number;
  }): Promise<AsyncIterable<Uint8Array> | undefined>;
}

/** A part of a span asked of the upstream: fetched by this process (`mine`), or by another one that is fetching it now. */
export interface RangePart {
  readonly from: number;
  readonly to: number;
  readonly flight: number;
  readonly mine: boolean;
}

/**
 * Upstream range fetches shared by the processes of one host: bytes another process is fetching
 * are waited for and read from the blob's kept-ranges file once there, not fetched again.
 */
export interface RangeCoordinator {
  /** [start, end] cut into parts another process fetches now and parts now claimed by this one. */
  claim(digest: string, start: number, end: number): Promise<RangePart[]>;
  /** This process's fetch of a part ended; `ok`: its bytes are in the kept-ranges file. */
  done(digest: string, flight: number, ok: boolean): void;
  /** Whether another process's fetch ended with its bytes in the kept-ranges file. */
  wait(flight: number): Promise<boolean>;
  /**
   * The fetches under way (of any process) overlapping [start, end], by start, each to `wait`
   * for: a whole-blob fill skips them instead of fetching their bytes too.
   */
  under(digest: string, start: number, end: number): Promise<RangePart[]>;
}
