/** @module workers/fill-table — the primary's record of fills across workers: one filling worker per digest, the others follow its temp file. */

/** What a claimant learns: fill it (fetch upstream), or follow the worker that does. */
export type WorkerClaim =
  | { readonly role: 'filler' }
  | {
      readonly role: 'follower';
      readonly owner: number;
      /** The filler's temp file: followers read it by position as it grows. */
      readonly tempPath: string;
      /** Whether the filler's upstream answered (size is then what it announced, maybe unknown). */
      readonly ready: boolean;
      readonly size: number | null;
    };

/** A message the primary sends to one worker about one digest. */
export interface FillNotice {
  readonly worker: number;
  readonly kind: 'ready' | 'end';
  readonly digest: string;
  readonly size: number | null;
}

interface Entry {
  readonly owner: number;
  readonly tempPath: string;
  ready: boolean;
  size: number | null;
  readonly followers: Set<number>;
}

/**
 * State per digest, changed by a few messages per fill (claim, ready, finish), never per chunk:
 * bytes travel through the shared temp file. A worker that dies loses its claims; followers are
 * told the fill ended, find it short and claim again, and one of them resumes upstream from
 * the bytes it already has.
 */
export class FillTable {
  private readonly entries = new Map<string, Entry>();

  claim(worker: number, digest: string, tempPath: string): WorkerClaim {
    const e = this.entries.get(digest);
    // The filler's own retry (a resumed upstream transfer) keeps its claim and its followers.
    if (e?.owner === worker) return { role: 'filler' };
    if (!e) {
      this.entries.set(digest, { owner: worker, tempPath, ready: false, size: null, followers: new Set() });
      return { role: 'filler' };
    }
    e.followers.add(worker);
    return { role: 'follower', owner: e.owner, tempPath: e.tempPath, ready: e.ready, size: e.size };
  }

  /** The filler's upstream answered: followers waiting for the size are told it. */
  ready(worker: number, digest: string, size: number | null): FillNotice[] {
    const e = this.entries.get(digest);
    if (!e || e.owner !== worker) return [];
    e.ready = true;
    e.size = size;
    return [...e.followers].map((w) => ({ worker: w, kind: 'ready', digest, size }));
  }

  /** The filler is done (stored, or failed): no byte will be added to its temp file. */
  finish(worker: number, digest: string): FillNotice[] {
    const e = this.entries.get(digest);
    if (!e || e.owner !== worker) return [];
    this.entries.delete(digest);
    return this.ended(digest, e);
  }

  /** A follower's own fill ended: it needs no more notices about the digest. */
  unfollow(worker: number, digest: string): void {
    this.entries.get(digest)?.followers.delete(worker);
  }

  /** A worker died: its fills end for their followers, and it follows nothing any more. */
  gone(worker: number): { notices: FillNotice[]; orphans: string[] } {
    const notices: FillNotice[] = [];
    const orphans: string[] = [];
    for (const [digest, e] of this.entries) {
      e.followers.delete(worker);
      if (e.owner !== worker) continue;
      this.entries.delete(digest);
      orphans.push(e.tempPath);
      notices.push(...this.ended(digest, e));
    }
    return { notices, orphans };
  }

  /** Whether some worker fills the digest now (a peer replica's `held` request may follow it). */
  filling(digest: string): boolean {
    return this.entries.has(digest);
  }

  /** Digests being filled now, each once however many workers follow it. */
  get size(): number {
    return this.entries.size;
  }

  private ended(digest: string, e: Entry): FillNotice[] {
    return [...e.followers].map((w) => ({ worker: w, kind: 'end', digest, size: e.size }));
  }
}
