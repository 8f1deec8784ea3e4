/** @module cluster/site-fills — chooses the byte source of each fill attempt: a holder, the replica filling it, or the upstream under the fill lease. */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { FillRouter } from '../ports/fills.js';
import type { BlobHolders, FillLease, FillLeases, SiteMembership } from '../ports/site.js';
import { PeerError, type PeerClient } from './peer-client.js';

export interface SiteFillsDeps {
  /** Holders first, then the fill lease; membership tells a dead holder or filler from a live one. */
  readonly site: SiteMembership & BlobHolders & FillLeases;
  readonly peers: PeerClient;
  /** Live replicas as of the last heartbeat; undefined while Redis does not answer (alone). */
  readonly live: () => ReadonlySet<string> | undefined;
  readonly logger: Logger;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** A lease not renewed this long lapses; renewed while bytes arrive. */
  readonly leaseMs: number;
  /** How long one attempt waits for a dying filler's lease before fetching upstream alone. */
  readonly waitMs: number;
}

/** How long a replica that failed a range is passed over: about as long as a dead one stays in the live view. */
export const SHUN_MS = 3_000;

/** Rendezvous (highest random weight) hashing: each digest has one preferred filler among the live replicas, spread evenly. */
export function electFiller(digest: string, members: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = '';
  for (const m of members) {
    const score = createHash('sha256').update(m).update('\0').update(digest).digest('hex');
    if (score > bestScore) [best, bestScore] = [m, score];
  }
  return best;
}

/**
 * Whether `url` is a live replica of the site: the last heartbeat's view, else the site's
 * current membership (the view can be a second old and miss a replica that just joined).
 * Rejects when the site's store does not answer.
 */
export async function isLiveMember(site: SiteMembership, live: ReadonlySet<string> | undefined, url: string): Promise<boolean> {
  return live?.has(url) || (await site.members()).some((m) => m.url === url);
}

/**
 * Per attempt (a fill's first, and each resume from the bytes it has): a live holder first,
 * then the elected filler (first attempt of a node's request only), then the fill lease: whoever
 * holds it is followed while it fills, a dead holder's lease is taken over, and the winner goes
 * upstream from its own offset. Any coordination failure means "alone": upstream directly.
 */
export class SiteFills implements FillRouter {
  private readonly leases = new Map<string, FillLease>();
  /** Peers whose range answer failed, until when they are not asked again. */
  private readonly shunned = new Map<string, number>();

  constructor(private readonly deps: SiteFillsDeps) {}

  /**
   * A range of a blob not held whole goes to the replica elected for its digest (the one its
   * whole-blob fill goes to), so the site asks the upstream for those bytes once; undefined (this
   * replica fetches it) when that is this replica, the site is unavailable, or the elected one
   * failed (it is then passed over for a while, MEMBER_TTL_MS being how soon a dead one is dropped).
   */
  async range(req: Parameters<NonNullable<FillRouter['range']>>[0]): Promise<AsyncIterable<Uint8Array> | undefined> {
    const { digest, start, end, target } = req;
    const live = this.deps.live();
    const elected = live && electFiller(digest, live);
    if (!elected || elected === this.deps.site.self || (this.shunned.get(elected) ?? 0) > this.deps.now()) return undefined;
    try {
      return await this.deps.peers.range(elected, target.key, target.repository, digest, start, end);
    } catch (err) {
      this.shunned.set(elected, this.deps.now() + SHUN_MS);
      this.deps.logger.warn({ digest, start, end, peer: elected, err: (err as Error).message }, 'elected replica could not serve a range; fetching it here');
      return undefined;
    }
  }

  retriable(err: unknown): boolean {
    return err instanceof PeerError;
  }

  finished(digest: string): void {
    const lease = this.leases.get(digest);
    if (!lease) return;
    this.leases.delete(digest);
    this.deps.site.releaseFill(lease).catch(() => undefined);
  }

  async open(req: Parameters<FillRouter['open']>[0]): Promise<AsyncIterable<Uint8Array>> {
    const { site, logger } = this.deps;
    const { digest, offset } = req;
    const self = site.self;
    const live = this.deps.live();
    if (!live) return req.upstream(offset);
    const log = { digest, offset };
    const fromPeer = async (peer: string, mode: 'held' | 'fill') => {
      const { body, size } = await this.deps.peers.open(peer, req.target.key, req.target.repository, digest, offset, mode);
      if (offset === 0) req.markReady(size);
      logger.info({ ...log, peer, mode }, 'blob from a peer replica');
      return body;
    };
    // Treating a holder or filler that just (re)joined as dead would cost a second upstream copy.
    const isLive = (url: string) => isLiveMember(site, this.deps.live(), url);
    const fromHolder = async (): Promise<AsyncIterable<Uint8Array> | undefined> => {
      const holders: string[] = [];
      for (const h of await site.holders(digest)) if (h !== self && (await isLive(h))) holders.push(h);
      for (const h of holders) {
        try {
          return await fromPeer(h, 'held');
        } catch (err) {
          logger.warn({ ...log, peer: h, err: (err as Error).message }, 'holder could not serve; trying another source');
        }
      }
      return undefined;
    };
    try {
      const held = await fromHolder();
      if (held) return held;
      if (!req.fromPeer && offset === 0 && !(await site.fillOwner(digest))) {
        const elected = electFiller(digest, live);
        if (elected && elected !== self) {
          try {
            return await fromPeer(elected, 'fill');
          } catch (err) {
            logger.warn({ ...log, peer: elected, err: (err as Error).message }, 'elected filler could not serve; filling here');
          }
        }
      }
      const deadline = this.deps.now() + this.deps.waitMs;
      for (;;) {
        const got = await site.acquireFill(digest, this.deps.leaseMs);
        let lease = 'lease' in got ? got.lease : undefined;
        if (!lease && 'owner' in got) {
          const owner = got.owner;
          if (owner === self || !(await isLive(owner))) lease = await site.takeOverFill(digest, owner, this.deps.leaseMs);
          else {
            try {
              return await fromPeer(owner, 'held');
            } catch (err) {
              logger.warn({ ...log, peer: owner, err: (err as Error).message }, 'filling replica could not serve; waiting for its lease');
            }
          }
        }
        if (lease) {
          // A filler that finished between the look at the holders and this lease has added
          // itself as a holder before releasing its lease: look again, or the site pays twice.
          const late = await fromHolder();
          if (late) {
            site.releaseFill(lease).catch(() => undefined);
            return late;
          }
          this.leases.set(digest, lease);
          return this.renewing(await req.upstream(offset), lease);
        }
        if (this.deps.now() > deadline) break;
        await this.deps.sleep(500);
      }
      logger.warn(log, 'no replica of the site could fill this blob in time; fetching it here');
    } catch (err) {
      if (err instanceof PeerError) throw err;
      logger.warn({ ...log, err: (err as Error).message }, 'site coordination unavailable; fetching upstream alone');
    }
    return req.upstream(offset);
  }

  /** Renews the lease while bytes arrive (never per chunk: at most a few times per lease), so a stalled filler's lease lapses. */
  private async *renewing(body: AsyncIterable<Uint8Array>, lease: FillLease): AsyncGenerator<Uint8Array> {
    let renewed = this.deps.now();
    for await (const chunk of body) {
      const now = this.deps.now();
      if (now - renewed > this.deps.leaseMs / 3) {
        renewed = now;
        this.deps.site.renewFill(lease, this.deps.leaseMs).catch(() => undefined);
      }
      yield chunk;
    }
  }
}
