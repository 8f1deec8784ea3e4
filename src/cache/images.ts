/** @module cache/images — what is cached, image by image: listing with sizes and platforms, pin, unpin, evict. */
import type { Logger } from 'pino';
import { conflict, manifestUnknown, nameInvalid } from '../oci/error-catalogue.js';
import { parseImageReference, type ImageReference } from '../oci/image-ref.js';
import { parseManifest } from '../oci/manifest.js';
import { isIndexType } from '../oci/mediatypes.js';
import { formatPlatform } from '../oci/platform.js';
import type { BlobStore } from '../storage/blob-files.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { ManifestGraph, ManifestRecords, RepositoryListings, TagIndex } from '../ports/repository-index.js';
import { NO_CACHE_OBSERVER, type CacheObserver } from './cache-observer.js';
import type { Target } from '../upstream/target.js';
import type { SignatureState } from './signature-policy.js';

/** One cached image as the admin API lists it. */
export interface ImageInfo {
  /** Upstream name ("" for content pushed to a plain registry). */
  readonly upstream: string;
  readonly repository: string;
  readonly tag: string | null;
  readonly digest: string;
  readonly mediaType: string;
  /** Bytes on disk: the manifest plus every cached manifest and blob it references. */
  readonly size: number;
  /** Platforms whose content is cached (`os/arch[/variant]`). */
  readonly platforms: string[];
  /** Milliseconds since the epoch of the last pull of the manifest. */
  readonly lastPull: number | null;
  readonly pinned: boolean;
  /** What the verify: policy last found for it (docs/signatures.md). */
  readonly signature: SignatureState;
}

export interface ImageCatalogDeps {
  readonly blobs: BlobStore;
  readonly index: BlobIndex;
  readonly repos: ManifestRecords & ManifestGraph & TagIndex & RepositoryListings;
  readonly logger: Logger;
  /** Routes a reference to its upstream and repository as `/v2/` requests are routed. */
  readonly resolve: (ref: ImageReference) => Target;
  /** Content being streamed or filled is never removed. */
  readonly inUse: (digest: string) => boolean;
  /** Content queued replications still need (write-behind): never removed either. */
  readonly protected?: () => Promise<ReadonlySet<string>>;
  readonly observer?: CacheObserver;
  /** The verification state of a manifest; 'not checked' when absent. */
  readonly signatureState?: (upstream: string, repository: string, digest: string) => Promise<SignatureState>;
}

/** Platform lists per manifest digest: content is immutable, so this never goes stale; bounded. */
const PLATFORM_MEMO_LIMIT = 10_000;

export class ImageCatalog {
  private readonly platformMemo = new Map<string, string[]>();

  constructor(private readonly deps: ImageCatalogDeps) {}

  async list(q = '', limit = 1000): Promise<ImageInfo[]> {
    const rows = await this.deps.repos.images(q, limit);
    const out: ImageInfo[] = [];
    for (const r of rows) {
      out.push({
        upstream: r.upstream,
        repository: r.repository,
        tag: r.tag,
        digest: r.digest,
        mediaType: r.mediaType,
        size: await this.closureSize(r.digest),
        platforms: await this.platforms(r.digest, r.mediaType),
        lastPull: r.lastPull,
        pinned: r.pinned === 1,
        signature: (await this.deps.signatureState?.(r.upstream, r.repository, r.digest)) ?? 'not checked',
      });
    }
    return out;
  }

  /** The cached manifest digest a reference names; MANIFEST_UNKNOWN when it is not cached. Never asks upstream. */
  async lookup(text: string): Promise<{ target: Target; digest: string }> {
    const ref = parseReference(text);
    const target = this.deps.resolve(ref);
    const { repos } = this.deps;
    const digest = ref.reference.kind === 'digest' ? ref.reference.digest : (await repos.tag(target.key, target.repository, ref.reference.tag))?.digest;
    if (!digest || !(await repos.manifest(target.key, target.repository, digest))) {
      throw manifestUnknown(target.repository, ref.reference.kind === 'digest' ? ref.reference.digest : ref.reference.tag);
    }
    return { target, digest };
  }

  /** Pins or unpins a cached image: its manifest and everything it references that is stored. */
  async pin(text: string, pinned: boolean): Promise<{ digest: string; digests: number }> {
    const { digest } = await this.lookup(text);
    return { digest, digests: await this.setPinned(digest, pinned) };
  }

  /** Sets the pin flag on a manifest and its stored descendants; returns how many were stored. */
  async setPinned(digest: string, pinned: boolean): Promise<number> {
    let n = 0;
    for (const d of await this.closure(digest)) {
      if (!(await this.deps.index.get(d))) continue;
      await this.deps.index.setPinned(d, pinned);
      n++;
    }
    return n;
  }

  /**
   * Removes a cached image's content, keeping what other cached manifests still reference and
   * what is being streamed or still waits to be replicated upstream, as size and ttl eviction
   * do. A pinned image must be unpinned first.
   */
  async evict(text: string): Promise<{ digest: string; evicted: number; freedBytes: number }> {
    const { digest } = await this.lookup(text);
    const { index, repos, blobs } = this.deps;
    if (await index.isPinned(digest)) {
      throw conflict(`image ${text} is pinned; unpin it first (POST /api/v1/unpin)`);
    }
    if (this.deps.inUse(digest)) throw conflict(`image ${text} is being pulled right now; try again when the pull is done`);
    const queued = (await this.deps.protected?.()) ?? new Set<string>();
    if (queued.has(digest)) {
      throw conflict(`image ${text} is waiting to be replicated upstream (write-behind); try again once berth queue shows it done`);
    }
    const set = await this.closure(digest);
    const keep = async (d: string) => this.deps.inUse(d) || queued.has(d) || (await index.isPinned(d)) || (await repos.parents(d)).some((p) => !set.has(p));
    // Decide everything before removing anything: removal erases the edges `keep` reads.
    const doomed: string[] = [];
    for (const d of set) if (d === digest || !(await keep(d))) doomed.push(d);
    let freedBytes = 0;
    let evicted = 0;
    for (const d of doomed) {
      const size = (await index.get(d))?.size ?? 0;
      // A blob a pull holds right now stays; eviction takes it later.
      if (!(await blobs.evict(d, () => index.forget(d)))) continue;
      freedBytes += size;
      evicted++;
    }
    (this.deps.observer ?? NO_CACHE_OBSERVER).evicted('admin', evicted, freedBytes);
    this.deps.logger.info({ image: text, digest, evicted, freedBytes }, 'image evicted on request');
    return { digest, evicted, freedBytes };
  }

  /** A manifest and every digest below it (child manifests, configs, layers). */
  async closure(digest: string): Promise<Set<string>> {
    const seen = new Set<string>([digest]);
    const queue = [digest];
    for (let d = queue.pop(); d !== undefined; d = queue.pop()) {
      for (const c of await this.deps.repos.children(d)) {
        if (!seen.has(c)) {
          seen.add(c);
          queue.push(c);
        }
      }
    }
    return seen;
  }

  private async closureSize(digest: string): Promise<number> {
    let total = 0;
    for (const d of await this.closure(digest)) total += (await this.deps.index.get(d))?.size ?? 0;
    return total;
  }

  /** Platforms of an index's cached entries, or of a single manifest's config. */
  private async platforms(digest: string, mediaType: string): Promise<string[]> {
    const memo = this.platformMemo.get(digest);
    if (memo) return memo;
    let found: string[] = [];
    let complete = true;
    try {
      if (isIndexType(mediaType)) {
        const index = parseManifest(await this.deps.blobs.readAll(digest), mediaType);
        const cached = new Set<string>();
        for (const c of await this.deps.repos.children(digest)) if (await this.deps.index.get(c)) cached.add(c);
        const entries = index.manifests.filter((m) => m.platform?.os && m.platform.architecture && m.platform.os !== 'unknown');
        found = entries
          .filter((m) => cached.has(m.digest))
          .map((m) => formatPlatform({ os: m.platform!.os!, architecture: m.platform!.architecture!, variant: m.platform!.variant }));
        // More platforms may be cached later, so only a fully cached index is remembered.
        complete = entries.every((m) => cached.has(m.digest));
      } else {
        const manifest = parseManifest(await this.deps.blobs.readAll(digest), mediaType);
        const config = manifest.blobs[0];
        if (config && (await this.deps.index.get(config.digest))) {
          const doc = JSON.parse((await this.deps.blobs.readAll(config.digest)).toString('utf8')) as {
            os?: unknown;
            architecture?: unknown;
            variant?: unknown;
          };
          if (typeof doc.os === 'string' && typeof doc.architecture === 'string') {
            found = [formatPlatform({ os: doc.os, architecture: doc.architecture, variant: typeof doc.variant === 'string' ? doc.variant : undefined })];
          }
        } else {
          complete = false;
        }
      }
    } catch {
      // Not an image (an artifact), or content removed meanwhile: no platform to report.
      complete = false;
    }
    if (complete) {
      if (this.platformMemo.size >= PLATFORM_MEMO_LIMIT) this.platformMemo.clear();
      this.platformMemo.set(digest, found);
    }
    return [...new Set(found)];
  }
}

/** Parses a reference from an API request; 400 with the grammar when it is malformed. */
export function parseReference(text: string): ImageReference {
  try {
    return parseImageReference(text);
  } catch (err) {
    throw nameInvalid((err as Error).message);
  }
}
