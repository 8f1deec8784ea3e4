/** @module cluster/peer-copy — a second copy of a write-behind push on another replica before the push is acknowledged: asking for it, and taking it. */
import type { Logger } from 'pino';
import type { SiteCache } from '../ports/push-site.js';
import type { RepositoryTarget } from '../ports/repository-target.js';
import type { CopyRequest, PeerCopy } from '../ports/peers.js';
import { digestOf, parseDigest } from '../oci/digest.js';
import { manifestInvalid, peerDigestMismatch, replicaNotLive, unavailable } from '../oci/error-catalogue.js';
import { MAX_MANIFEST_SIZE, parseManifest } from '../oci/manifest.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { RepositoryIndex } from '../ports/repository-index.js';
import type { BlobStore } from '../storage/blob-files.js';
import type { PeerClient } from './peer-client.js';
import { isLiveMember } from './site-fills.js';
import type { SiteMembership } from '../ports/site.js';

export interface PeerCopyDeps {
  readonly blobs: BlobStore;
  /** Records this replica as a holder after each commit (cluster/replica's holding index). */
  readonly index: BlobIndex;
  readonly repos: RepositoryIndex;
  readonly peers: PeerClient;
  readonly live: () => ReadonlySet<string> | undefined;
  readonly site: SiteMembership;
  readonly logger: Logger;
}

/** The taking side: pulls each item from `from` through the peer endpoint, verifies its digest, and stores it (fsync'd) before answering. */
export class PeerCopier<T extends RepositoryTarget> implements PeerCopy<T> {
  constructor(private readonly deps: PeerCopyDeps) {}

  async take(target: T, req: CopyRequest): Promise<{ copied: number; present: number }> {
    // Only a live replica of this site is read from (the request carries the secret there); the
    // heartbeat view may lag a replica that just joined, so Redis is asked before refusing.
    const { live, site } = this.deps;
    const known = await isLiveMember(site, live(), req.from).catch(() => false);
    if (!known || req.from === site.self) {
      throw replicaNotLive(req.from);
    }
    let copied = 0;
    for (const d of req.blobs) if (await this.blob(target, req.from, d)) copied++;
    for (const m of req.manifests) if (await this.manifest(target, req.from, m.digest, m.mediaType)) copied++;
    return { copied, present: req.blobs.length + req.manifests.length - copied };
  }

  /** True when the bytes came over; false when they were here already. */
  private async blob(target: RepositoryTarget, from: string, digest: string): Promise<boolean> {
    const { blobs, index, repos, peers } = this.deps;
    const release = await blobs.hold(digest);
    try {
      let size = await blobs.size(digest);
      const fetched = size === undefined;
      if (size === undefined) {
        const writer = await blobs.createWriter(parseDigest(digest).algorithm);
        try {
          const { body } = await peers.open(from, target.key, target.repository, digest, 0, 'held');
          for await (const chunk of body) await writer.write(chunk);
          size = (await writer.commit(digest)).size;
        } catch (err) {
          await writer.abort().catch(() => undefined);
          throw err;
        }
      }
      await index.put(digest, size);
      await repos.link(target.key, target.repository, digest);
      return fetched;
    } finally {
      release();
    }
  }

  private async manifest(target: T, from: string, digest: string, mediaType: string): Promise<boolean> {
    const { blobs, repos, peers } = this.deps;
    if ((await repos.manifest(target.key, target.repository, digest)) && (await blobs.size(digest)) !== undefined) return false;
    const { body } = await peers.open(from, target.key, target.repository, digest, 0, 'held');
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of body) {
      n += c.length;
      if (n > MAX_MANIFEST_SIZE) throw manifestInvalid(`manifest ${digest} from ${from} exceeds ${MAX_MANIFEST_SIZE} bytes`);
      chunks.push(Buffer.from(c));
    }
    const bytes = Buffer.concat(chunks);
    if (digestOf(bytes, parseDigest(digest).algorithm) !== digest) {
      throw peerDigestMismatch(from, digest);
    }
    const parsed = parseManifest(bytes, mediaType);
    await this.cache().storeManifest(target, digest, bytes, parsed);
    await repos.link(target.key, target.repository, digest);
    return true;
  }

  private cacheRef: SiteCache<T> | undefined;
  /** The cache records manifests the way every other path does; it is built after this. */
  attach(cache: SiteCache<T>): void {
    this.cacheRef = cache;
  }
  private cache(): SiteCache<T> {
    if (!this.cacheRef) throw unavailable('this replica is starting');
    return this.cacheRef;
  }
}
