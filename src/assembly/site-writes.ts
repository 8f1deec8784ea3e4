/** @module assembly/site-writes — a replica's write side in a site: the site's queue and held tags (local while Redis is away), second copies of pushes, and taking copies for others. */
import type { Target } from '../upstream/target.js';
import type { Logger } from 'pino';
import type { SiteCache } from '../ports/push-site.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { RepositoryIndex } from '../ports/repository-index.js';
import type { PushPorts } from '../storage/local.js';
import type { BlobStore } from '../storage/blob-files.js';
import { PeerCopier } from '../cluster/peer-copy.js';
import { ReplicaPushSite } from '../cluster/replica-push-site.js';
import { RedisHeldTags, RedisReplicationQueue } from '../cluster/redis-queue.js';
import type { Replica } from '../cluster/replica.js';
import { SiteHeldTags, SiteQueue } from '../cluster/site-queue.js';

/** A replica's claims on the site's queue lapse this long after it stops renewing them (it died): then a survivor runs them. */
export const SITE_JOB_LEASE_MS = 15_000;
/** How often jobs queued here while Redis was away are offered to the site's queue. */
const MOVE_EVERY_MS = 5_000;

export interface SiteWriteSide {
  readonly queue: SiteQueue;
  readonly heldTags: SiteHeldTags;
  readonly pushSite: ReplicaPushSite<Target>;
  readonly copier: PeerCopier<Target>;
  /** Who this replica claims jobs as: its advertise URL. */
  readonly owner: string;
  readonly leaseMs: number;
  /**
   * The cache is built: copies and gathers can store through it. With `moveLocal`, also starts
   * moving jobs queued here while Redis was away into the site's queue: one mover per store (the
   * lead worker), so two workers never move the same job twice.
   */
  attach(cache: SiteCache<Target>, moveLocal: boolean): void;
  close(): void;
}

export function openSiteWriteSide(
  replica: Replica,
  deps: { site: string; blobs: BlobStore; index: BlobIndex; repos: RepositoryIndex; local: PushPorts; logger: Logger; now: () => number },
): SiteWriteSide {
  const { blobs, index, repos, local, logger, now } = deps;
  const log = logger.child({ cluster: deps.site });
  const queue = new SiteQueue(new RedisReplicationQueue(replica.redis, deps.site, now), local.queue, log);
  const heldTags = new SiteHeldTags(new RedisHeldTags(replica.redis, deps.site, now), local.heldTags, log);
  const live = () => replica.live();
  const pushSite = new ReplicaPushSite<Target>({ site: replica.site, peers: replica.peers, manifests: replica.manifests, blobs, live, logger: log });
  const copier = new PeerCopier<Target>({ blobs, index, repos, peers: replica.peers, live, site: replica.site, logger: log });
  let timer: NodeJS.Timeout | undefined;
  return {
    queue,
    heldTags,
    pushSite,
    copier,
    owner: replica.site.self,
    leaseMs: SITE_JOB_LEASE_MS,
    attach: (cache, moveLocal) => {
      pushSite.attach(cache);
      copier.attach(cache);
      if (!moveLocal) return;
      warnIfVolatile(replica, log);
      timer = setInterval(() => {
        if (live()) queue.moveLocal().catch((err: Error) => log.warn({ err: err.message }, 'could not move local pushes to the site queue; retrying'));
      }, MOVE_EVERY_MS);
      timer.unref();
    },
    close: () => clearInterval(timer),
  };
}

/** The site's queue lives in Redis: one that restarts empty forgets queued pushes. CONFIG may be disabled (managed Redis): then nothing is said. */
function warnIfVolatile(replica: Replica, logger: Logger): void {
  void (replica.redis.config('GET', 'appendonly') as Promise<string[]>)
    .then((reply) => {
      if (reply[1] === 'no')
        logger.warn('redis runs without appendonly: a Redis restart forgets queued write-behind pushes; set appendonly yes (see Large sites)');
    })
    .catch(() => undefined);
}
