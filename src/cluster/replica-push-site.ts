/** @module cluster/replica-push-site — what a write to one replica asks of the site's others: a second copy before a write-behind push is answered, and content another replica took. */
import type { Logger } from 'pino';
import type { ManifestSite } from '../ports/manifest-site.js';
import type { PushSite, SiteCache } from '../ports/push-site.js';
import type { RepositoryTarget } from '../ports/repository-target.js';
import { digestOf, parseDigest } from '../oci/digest.js';
import { unavailable } from '../oci/error-catalogue.js';
import { parseManifest } from '../oci/manifest.js';
import type { BlobHolders, SiteMembership } from '../ports/site.js';
import type { BlobStore } from '../storage/blob-files.js';
import type { CopyRequest } from '../ports/peers.js';
import type { PeerClient } from './peer-client.js';
import { electFiller } from './site-fills.js';

export interface PushSiteDeps {
  readonly site: SiteMembership & BlobHolders;
  readonly peers: PeerClient;
  readonly manifests: ManifestSite;
  readonly blobs: BlobStore;
  /** Live replicas as of the last heartbeat; undefined while Redis does not answer (alone). */
  readonly live: () => ReadonlySet<string> | undefined;
  readonly logger: Logger;
}

/** The site side of pushes; `attach` hands it the cache once that is built (fills and manifests go through it). */
export class ReplicaPushSite<T extends RepositoryTarget> implements PushSite<T> {
  private cache: SiteCache<T> | undefined;

  constructor(private readonly deps: PushSiteDeps) {}

  attach(cache: SiteCache<T>): void {
    this.cache = cache;
  }

  /** Read from Redis now, not the last heartbeat's view: a replica that joined a moment ago counts. */
  private async others(): Promise<string[]> {
    const fresh = await this.deps.site.members().catch(() => undefined);
    const live = fresh ? fresh.map((m) => m.url) : [...(this.deps.live() ?? [])];
    return live.filter((m) => m !== this.deps.site.self);
  }

  /** Tried in rendezvous order over the other live replicas: the first that stores everything is the second holder. */
  async secondCopy(target: T, blobs: readonly string[], manifests: ReadonlyArray<{ digest: string; mediaType: string }>): Promise<void> {
    const { peers, logger, site } = this.deps;
    const key = manifests.at(-1)?.digest ?? '';
    const req: CopyRequest = { upstream: target.key, repository: target.repository, from: site.self, blobs, manifests };
    const errors: string[] = [];
    for (let left = await this.others(); left.length > 0;) {
      const peer = electFiller(key, left)!;
      left = left.filter((m) => m !== peer);
      try {
        await peers.copy(peer, req);
        logger.info({ repository: target.repository, digest: key, peer }, 'write-behind push held by a second replica');
        return;
      } catch (err) {
        errors.push((err as Error).message);
        logger.warn({ repository: target.repository, digest: key, peer, err: (err as Error).message }, 'replica could not take a copy of a push');
      }
    }
    if (errors.length === 0) return;
    throw unavailable(`write-behind push not accepted: no other replica of the site could keep a second copy (${errors.join('; ').slice(0, 500)}); push again`);
  }

  /** Filled through the cache (holders first, verified, stored here), never from the upstream: only when a live replica holds it. */
  async gatherBlob(target: T, digest: string): Promise<boolean> {
    const live = this.deps.live();
    if (!live || !this.cache || !target.upstream) return false;
    try {
      const holders = (await this.deps.site.holders(digest)).filter((h) => h !== this.deps.site.self && live.has(h));
      if (holders.length === 0) return false;
      const handle = await this.cache.blob(target, digest, 'fill');
      try {
        await handle.finalSize();
      } finally {
        await handle.close();
      }
      return (await this.deps.blobs.size(digest)) !== undefined;
    } catch (err) {
      this.deps.logger.debug({ repository: target.repository, digest, err: (err as Error).message }, 'blob not available from the site');
      return false;
    }
  }

  async gatherManifest(target: T, digest: string): Promise<boolean> {
    if (!this.deps.live() || !this.cache) return false;
    try {
      const body = await this.deps.manifests.fetch(target, digest);
      if (!body || digestOf(body, parseDigest(digest).algorithm) !== digest) return false;
      const parsed = parseManifest(body);
      await this.cache.storeManifest(target, digest, body, parsed);
      return true;
    } catch (err) {
      this.deps.logger.debug({ repository: target.repository, digest, err: (err as Error).message }, 'manifest not available from the site');
      return false;
    }
  }
}
