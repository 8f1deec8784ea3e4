/** @module cache/registry — the cache facade the HTTP layer talks to: blobs, manifests, tag lists, catalog. */
import type { Logger } from 'pino';
import { OciError, isTransient } from '../oci/errors.js';
import { nameUnknown } from '../oci/error-catalogue.js';
import type { BlobStore } from '../storage/blob-files.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { HeldTags } from '../ports/held-tags.js';
import type { ManifestGraph, ManifestRecords, RepositoryLinks, RepositoryListings, TagIndex } from '../ports/repository-index.js';
import type { VerifyRule } from '../config/verify.js';
import { SignaturePolicy, type SignatureState } from './signature-policy.js';
import { getTags } from '../upstream/registry-api.js';
import { BlobCache, type BlobHandle } from './blob-cache.js';
import type { FillRouter, PeerMode } from '../ports/fills.js';
import { ManifestCache, type ManifestResult } from './manifests.js';
import type { ManifestSite } from '../ports/manifest-site.js';
import type { ManifestReference } from '../oci/reference.js';
import type { Outcome } from '../ports/request-observer.js';
import type { Target, Upstream } from '../upstream/target.js';
import type { WorkPriority } from '../upstream/budget.js';
import { Evictor, type EvictionLimits } from './eviction.js';
import type { CacheObserver } from './cache-observer.js';
import { listReferrers, type ReferrersPage, type ReferrersRequest } from './referrers.js';
import type { ParsedManifest } from '../oci/manifest.js';

export interface RegistryCacheDeps {
  readonly blobs: BlobStore;
  readonly index: BlobIndex;
  readonly repos: RepositoryLinks & ManifestRecords & TagIndex & RepositoryListings;
  readonly upstreams: readonly Upstream[];
  readonly logger: Logger;
  readonly now: () => number;
  readonly limits: EvictionLimits;
  /** Upstreams the other serving workers find down (their content is kept as this process's breaker would keep it). */
  readonly downElsewhere?: () => Promise<ReadonlySet<string>>;
  /** Extra protection from eviction (content waiting to be replicated), read once per pass. */
  readonly protect?: () => Promise<ReadonlySet<string>>;
  /** Pushed tags the upstream does not know (yet): served from here and listed with the upstream's. */
  readonly heldTags?: HeldTags;
  /** Where transfer and eviction numbers go (metrics). */
  readonly observer?: CacheObserver;
  /** Told the whole set of blobs being filled or streamed whenever it changes. */
  readonly onInUseChange?: (inUse: string[]) => void;
  /** Byte sources beside the upstream: the site's other replicas. */
  readonly router?: FillRouter;
  /** Shared tag records and peers' manifests. */
  readonly manifestSite?: ManifestSite;
  /** `verify:` entries; with `graph` (which manifests reference a digest), served content is checked against them. */
  readonly verify?: readonly VerifyRule[];
  readonly graph?: ManifestGraph;
  /** Marks background work for the WAN budgets (see cache/blob-cache). */
  readonly priority?: WorkPriority;
}

export interface TagPage {
  readonly tags: string[];
  /** The last tag of this page when more follow. */
  readonly next: string | undefined;
  readonly outcome: Outcome;
}

/** The one way into the cache: its parts are private, so callers cannot reach past its policy. */
export class RegistryCache {
  private readonly blobs: BlobCache;
  private readonly manifests: ManifestCache;
  private readonly evictor: Evictor;
  private readonly signatures: SignaturePolicy | undefined;

  constructor(private readonly deps: RegistryCacheDeps) {
    const { logger, index, limits } = deps;
    let diskFullLogged = false;
    this.blobs = new BlobCache({
      ...deps,
      onStored: () => {
        diskFullLogged = false;
        this.evictor.maybeRun();
      },
      onDiskFull: async (info) => {
        // Once per episode with the numbers; reset when a later fill stores again.
        try {
          const { bytes } = await index.usage();
          if (!diskFullLogged)
            logger.error({ ...info, storeBytes: bytes, maxsize: limits.maxsize }, 'disk full while storing a blob: passing bytes through to clients, evicting');
          diskFullLogged = true;
        } catch (err) {
          logger.warn({ err: (err as Error).message }, 'could not read the store size on a full disk');
        }
        await this.diskFull();
      },
    });
    this.manifests = new ManifestCache({
      ...deps,
      ...(deps.manifestSite ? { site: deps.manifestSite } : {}),
      // An image manifest, not an index: only the platform a client asked for is fetched ahead.
      onFetched: (target, m) => {
        if (target.upstream?.config.prefetch && m.manifests.length === 0)
          this.blobs.prefetch(
            target,
            m.blobs.map((b) => b.digest),
          );
      },
    });
    const { verify, graph } = deps;
    this.signatures =
      verify && graph && verify.some((r) => r.mode !== 'off')
        ? new SignaturePolicy({
            ...deps,
            rules: verify,
            graph,
            manifest: (target, ref) => this.manifests.get(target, ref),
            blob: (target, digest) => this.blobs.get(target, digest),
            linkSignature: (digest, signature) => deps.index.linkSignature?.(digest, signature) ?? Promise.resolve(),
            signatureOf: (digest) => deps.index.signatureOf?.(digest) ?? Promise.resolve(undefined),
          })
        : undefined;
    this.evictor = new Evictor({
      ...deps,
      inUse: (digest) => this.blobs.isInUse(digest),
      protected: deps.protect,
      unreachable: (key) => deps.upstreams.find((u) => u.config.name === key)?.client.breaker.state === 'down',
      onEvicted: (reason, count, bytes) => deps.observer?.evicted(reason, count, bytes),
    });
  }

  /** What the verify: policy last found for a manifest (the admin API's images). */
  async signatureState(upstream: string, repository: string, digest: string): Promise<SignatureState> {
    return (await this.signatures?.state(upstream, repository, digest)) ?? 'not checked';
  }

  /** A manifest as clients get it: in a repository whose verify: entry enforces, only with a valid signature. */
  async manifest(target: Target, ref: ManifestReference): Promise<ManifestResult> {
    const m = await this.manifests.get(target, ref);
    await this.signatures?.checkManifest(target, m);
    return m;
  }

  /** Records a verified manifest (a push) under the repository. */
  storeManifest(target: Target, digest: string, body: Buffer, parsed: ParsedManifest): Promise<void> {
    return this.manifests.store(target, digest, body, parsed);
  }

  /** `peer`: asked by another replica of the site (see cache/blob-cache PeerMode); `ranged`: the client asks for ranges. */
  async blob(target: Target, digest: string, peer?: PeerMode, opts?: { readonly ranged?: boolean }): Promise<BlobHandle> {
    // Another replica asking applies its own policy to its own clients.
    if (!peer) await this.signatures?.checkBlob(target, digest);
    return this.blobs.get(target, digest, peer, opts);
  }

  async headBlob(target: Target, digest: string): Promise<{ size: number; outcome: Outcome }> {
    await this.signatures?.checkBlob(target, digest);
    return this.blobs.head(target, digest);
  }

  /** One page of the manifests whose subject is `subject` in the repository (the referrers API). */
  referrers(target: Target, subject: string, req: ReferrersRequest): Promise<ReferrersPage> {
    return listReferrers(this.deps, target, subject, req);
  }

  /** Being filled or streamed by this process right now. */
  isInUse(digest: string): boolean {
    return this.blobs.isInUse(digest);
  }

  get fillsInFlight(): number {
    return this.blobs.inFlight;
  }

  /**
   * A write met a full disk: one eviction pass down to lowwatermark of what the store holds
   * (pinned and pushed-only content stays, as always). Never throws: eviction itself may need the
   * disk (SQLite), and the request that met it is answered regardless.
   */
  async diskFull(): Promise<void> {
    const { index, limits, logger } = this.deps;
    try {
      const { bytes } = await index.usage();
      await this.evictor.run('disk full', bytes * limits.lowwatermark);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'eviction during disk full did not complete');
    }
  }

  /** Starts an eviction pass when the store is above maxsize; cheap to call after every commit. */
  maybeEvict(): void {
    this.evictor.maybeRun();
  }

  /** From now on kept ranges unused for storage.maintenance.keptranges.age are removed (one process of a store runs this). */
  startSweeps(): void {
    this.evictor.startSweeps();
  }

  /** Before the stores close (shutdown): no eviction starts, and a pass under way ends first. */
  stopEviction(): Promise<void> {
    return this.evictor.stop();
  }

  /** Tags come from upstream when it answers (it is the authority), else from what berth has seen. */
  async tags(target: Target, n: number, last: string | undefined): Promise<TagPage> {
    if (target.upstream) {
      try {
        const held = (await this.deps.heldTags?.heldTags(target.key, target.repository)) ?? [];
        const all = [...new Set([...(await this.upstreamTags(target, held.length > 0)), ...held])];
        const after = all.filter((t) => last === undefined || t > last).sort(byteOrder);
        return page(after, n, 'miss');
      } catch (err) {
        if (err instanceof OciError && !isTransient(err)) throw err;
        this.deps.logger.warn(
          { upstream: target.key, repository: target.repository, err: (err as Error).message },
          'upstream unavailable; listing cached tags',
        );
      }
    }
    const local = await this.deps.repos.tags(target.key, target.repository, last, n + 1);
    if (local.length === 0 && last === undefined && !(await this.deps.repos.hasRepository(target.key, target.repository))) {
      throw nameUnknown(`repository ${target.repository} is not known to this registry`, { name: target.repository });
    }
    return page(local, n, target.upstream ? 'stale' : 'local');
  }

  /** Repositories berth holds content for, named as clients address them. */
  async catalog(
    n: number,
    last: string | undefined,
    visible: (name: string) => boolean = () => true,
  ): Promise<{ repositories: string[]; next: string | undefined }> {
    const defaults = new Set(this.deps.upstreams.filter((u) => u.config.default).map((u) => u.config.name));
    const prefixes = new Map(this.deps.upstreams.map((u) => [u.config.name, u.config.prefix]));
    const names = new Set<string>();
    for (const { upstream, repository } of await this.deps.repos.allRepositories()) {
      if (upstream === '' || defaults.has(upstream)) names.add(repository);
      const prefix = prefixes.get(upstream);
      if (prefix) names.add(`${prefix}/${repository}`);
    }
    const sorted = [...names].filter((r) => (last === undefined || r > last) && visible(r)).sort(byteOrder);
    const p = page(sorted, n, 'local');
    return { repositories: p.tags, next: p.next };
  }

  /** With tags held here, an upstream that does not know the repository yet lists none. */
  private async upstreamTags(target: Target, knownHere = false): Promise<string[]> {
    const { client } = target.upstream!;
    const tags = await getTags(client, target.repository);
    if (tags) return tags;
    if (knownHere) return [];
    throw nameUnknown(`repository ${target.repository} is not known upstream (${client.name})`, { name: target.repository });
  }
}

function page(sorted: string[], n: number, outcome: Outcome): TagPage {
  const tags = sorted.slice(0, n);
  const next = sorted.length > n && tags.length > 0 ? tags[tags.length - 1] : undefined;
  return { tags, next, outcome };
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
