/** @module ports/fills — the port for fill coordination: one filler per digest, everyone else follows its progress. */

/**
 * What a fill publishes for followers. Progress is a count of bytes already readable (from the
 * filler's temp file locally, from the filling peer later); followers read it when they need
 * more bytes, so no message is sent per chunk.
 */
export interface FillProgress {
  /** Expected size, once known. */
  readonly size: number | undefined;
  readonly written: number;
  readonly state: 'receiving' | 'verified' | 'failed';
}

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
