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
 * replica stores or is filling now; `fill` may fill it here too, but never forwards to a third.
 */
export type PeerMode = 'held' | 'fill';

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
}
