/** @module cluster/replica — this replica's part in a site: heartbeat, the live-member view, holder records, the fill router. */
import type { Logger } from 'pino';
import type { ClusterConfig } from '../config/types.js';
import type { BlobEntry, BlobIndex, EvictionView } from '../ports/blob-index.js';
import type { BlobHolders, SiteMembership, UploadOwners } from '../ports/site.js';
import type { UploadRow, UploadSessions } from '../ports/upload-sessions.js';
import { PeerClient } from './peer-client.js';
import type { Redis } from 'ioredis';
import { connectRedis } from './redis.js';
import { RedisSite } from './redis-site.js';
import { SiteFills, isLiveMember } from './site-fills.js';
import { siteManifests } from './site-manifests.js';
import type { ManifestSite } from '../ports/manifest-site.js';

/** A replica missing this long is ignored by the others. */
export const MEMBER_TTL_MS = 3_000;
const HEARTBEAT_MS = 1_000;
const LEASE_MS = 5_000;

export interface Replica {
  /** The Redis connection the site's records (and its write-behind queue) use. */
  readonly redis: Redis;
  /** The site's members and holders, for the write side (second copies, gathers); the replica alone heartbeats and closes it. */
  readonly site: SiteMembership & BlobHolders;
  /** Live replicas as of the last heartbeat; undefined while Redis does not answer (alone). */
  live(): ReadonlySet<string> | undefined;
  readonly router: SiteFills;
  readonly peers: PeerClient;
  readonly manifests: ManifestSite;
  /** The upload rows, recording in the site which replica holds each upload's bytes. */
  owning(uploads: UploadSessions, ttlMs: number): UploadSessions;
  /** The live replica other than this one that took upload `id`, if any (the request goes there). */
  uploadOwner(id: string): Promise<string | undefined>;
  /** The blob index, recording this replica as a holder after each commit and dropping it before each removal. */
  holding(index: BlobIndex): BlobIndex;
  start(): void;
  close(): Promise<void>;
}

export function openReplica(
  config: ClusterConfig,
  deps: { logger: Logger; now: () => number; timeouts: { connectMs: number; firstByteMs: number; idleMs: number } },
): Replica {
  const logger = deps.logger.child({ cluster: config.name });
  const redis = connectRedis(config.redis, logger, `berth:${config.name}:${config.advertise}`.replace(/\s/g, '_'));
  const site = new RedisSite(redis, config.advertise, config.name);
  const peers = new PeerClient(config.secret, deps.timeouts);
  let live: Set<string> | undefined;
  let wasAlone = true;
  let ownDigests: (() => Promise<string[]>) | undefined;
  const tick = async () => {
    try {
      await site.heartbeat(MEMBER_TTL_MS);
      const members = await site.members();
      live = new Set(members.map((m) => m.url));
      if (wasAlone && ownDigests) {
        // Redis may have come back empty: tell it again what this replica holds.
        // In the background: a large store must not hold up the heartbeat.
        const list = ownDigests;
        void (async () => site.addHolders(await list()))().catch((err: Error) => logger.warn({ err: err.message }, 'could not re-announce held blobs'));
      }
      if (wasAlone) logger.info({ members: [...live] }, 'coordinating with the site');
      wasAlone = false;
    } catch (err) {
      if (!wasAlone) logger.warn({ err: (err as Error).message }, 'site coordination lost; working alone');
      else logger.debug({ err: (err as Error).message }, 'site coordination unavailable');
      live = undefined;
      wasAlone = true;
    }
  };
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> = Promise.resolve();
  const router = new SiteFills({
    site,
    peers,
    live: () => live,
    logger,
    now: deps.now,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    leaseMs: LEASE_MS,
    waitMs: 15_000,
  });
  const bestEffort = (what: string, p: Promise<unknown>) =>
    p.catch((err: Error) => logger.debug({ err: err.message }, `${what} not recorded in the site (Redis unavailable)`));
  return {
    redis,
    site,
    live: () => live,
    router,
    peers,
    manifests: siteManifests(site, peers, () => live),
    owning: (uploads, ttlMs) => new OwningUploads(uploads, site, ttlMs, bestEffort),
    uploadOwner: async (id) => {
      const members = live;
      if (!members) return undefined;
      const owner = await site.uploadOwner(id).catch(() => undefined);
      if (owner === undefined || owner === site.self) return undefined;
      // An owner that just joined, answered "not anyone's", would turn the client's upload into an unknown one.
      return (await isLiveMember(site, members, owner).catch(() => false)) ? owner : undefined;
    },
    holding: (index) => {
      ownDigests = () => index.ownDigests();
      return new HoldingIndex(index, site, bestEffort);
    },
    start: () => {
      // A reconnect ends "alone" at once, not at the next heartbeat.
      redis.on('ready', () => {
        if (timer) ticking = ticking.then(tick);
      });
      ticking = tick();
      timer = setInterval(() => {
        ticking = ticking.then(tick);
      }, HEARTBEAT_MS);
      timer.unref();
    },
    close: async () => {
      clearInterval(timer);
      await ticking;
      await site.leave().catch(() => undefined);
      await site.close();
      await peers.close();
    },
  };
}

/** Holder records follow the index: added after a commit is recorded (verified and synced), removed before the file goes. */
class HoldingIndex implements BlobIndex {
  constructor(
    private readonly inner: BlobIndex,
    private readonly site: BlobHolders,
    private readonly bestEffort: (what: string, p: Promise<unknown>) => Promise<unknown>,
  ) {}
  get(d: string): Promise<BlobEntry | undefined> {
    return this.inner.get(d);
  }
  async put(d: string, size: number): Promise<void> {
    await this.inner.put(d, size);
    await this.bestEffort('holder', this.site.addHolder(d));
  }
  touch(d: string): Promise<void> {
    return this.inner.touch(d);
  }
  async forget(d: string): Promise<void> {
    await this.bestEffort('holder removal', this.site.removeHolder(d));
    await this.inner.forget(d);
  }
  ownDigests(): Promise<string[]> {
    return this.inner.ownDigests();
  }
  setPinned(d: string, pinned: boolean): Promise<void> {
    return this.inner.setPinned(d, pinned);
  }
  isPinned(d: string): Promise<boolean> {
    return this.inner.isPinned(d);
  }
  usage(): Promise<{ bytes: number; blobs: number }> {
    return this.inner.usage();
  }
  evictionView(): Promise<EvictionView> {
    return this.inner.evictionView();
  }
  linkSignature(digest: string, signature: string): Promise<void> {
    return this.inner.linkSignature?.(digest, signature) ?? Promise.resolve();
  }
  signatureOf(digest: string): Promise<string | undefined> {
    return this.inner.signatureOf?.(digest) ?? Promise.resolve(undefined);
  }
}

/** Upload rows stay local (the bytes are here); the site learns which replica has each, so any replica can take its next request. */
class OwningUploads implements UploadSessions {
  constructor(
    private readonly inner: UploadSessions,
    private readonly site: UploadOwners,
    private readonly ttlMs: number,
    private readonly bestEffort: (what: string, p: Promise<unknown>) => Promise<unknown>,
  ) {}
  async insert(id: string, upstream: string, repository: string): Promise<void> {
    await this.inner.insert(id, upstream, repository);
    await this.bestEffort('upload owner', this.site.recordUpload(id, this.ttlMs));
  }
  get(id: string): Promise<UploadRow | undefined> {
    return this.inner.get(id);
  }
  async touch(id: string): Promise<void> {
    await this.inner.touch(id);
    await this.bestEffort('upload owner', this.site.recordUpload(id, this.ttlMs));
  }
  async delete(id: string): Promise<void> {
    await this.bestEffort('upload owner removal', this.site.forgetUpload(id));
    await this.inner.delete(id);
  }
  all(): Promise<UploadRow[]> {
    return this.inner.all();
  }
}
