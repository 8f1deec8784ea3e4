/** @module cache/warm-up — warm-up jobs: fetch images (indexes resolved to platforms) and every blob into the cache, with progress. */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { ImageReference } from '../oci/image-ref.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { isIndexType, isNonDistributable } from '../oci/mediatypes.js';
import { formatPlatform, selectManifests, type Platform } from '../oci/platform.js';
import type { BlobStore } from '../storage/blob-files.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { TagIndex } from '../ports/repository-index.js';
import { parseReference, type ImageCatalog } from './images.js';
import type { RegistryCache } from './registry.js';
import type { Target } from '../upstream/target.js';
import type { WorkPriority } from '../upstream/budget.js';

export type WarmPlatforms = readonly Platform[] | 'all';
export type WarmImageStateName = 'pending' | 'running' | 'done' | 'cached' | 'failed';

/** Progress of one image of a job, as the admin API shows it. */
export interface WarmImage {
  readonly ref: string;
  state: WarmImageStateName;
  /** Bytes of the blobs (configs and layers) of the chosen platforms. */
  bytesTotal: number;
  /** Of bytesTotal: already cached plus fetched so far. */
  bytesDone: number;
  /** Of bytesDone: what this job had to transfer. */
  bytesFetched: number;
  blobsTotal: number;
  blobsDone: number;
  error: string | null;
  /** The manifest (or index) digest the reference resolved to. */
  digest: string | null;
  /** Index entries chosen, as os/arch[/variant]. */
  platforms: string[];
}

export interface WarmJob {
  readonly id: string;
  state: 'running' | 'done' | 'failed';
  readonly createdAt: number;
  finishedAt: number | null;
  /** `api` (berth warm, the dashboard) or `schedule` (the warm: config list). */
  readonly source: 'api' | 'schedule' | 'hub';
  readonly pin: boolean;
  readonly platforms: string[] | 'all';
  readonly images: WarmImage[];
}

export interface WarmRequest {
  readonly images: readonly string[];
  readonly platforms: WarmPlatforms;
  readonly pin: boolean;
  readonly source: 'api' | 'schedule' | 'hub';
  /** When a pinned tag has moved, unpin what it pointed to before (scheduled refreshes). */
  readonly replacePinned?: boolean;
}

export interface WarmDeps {
  readonly cache: RegistryCache;
  readonly blobs: BlobStore;
  readonly index: BlobIndex;
  readonly repos: TagIndex;
  readonly catalog: ImageCatalog;
  readonly resolve: (ref: ImageReference) => Target;
  readonly logger: Logger;
  readonly now: () => number;
  /** Blobs of one image fetched at once. */
  readonly concurrency?: number;
  /** Jobs run as background work: under a WAN budget they yield to node pulls. */
  readonly priority?: WorkPriority;
}

/** Finished jobs kept for the API; running ones are always kept. */
const MAX_JOBS = 100;

export class WarmJobs {
  private readonly jobs = new Map<string, WarmJob>();
  private readonly draining = new Set<Readable>();
  /** What each scheduled tag resolved to when last pinned, so a moved tag's old content can be unpinned. */
  private readonly pinnedTags = new Map<string, string>();
  private closed = false;

  constructor(private readonly deps: WarmDeps) {}

  /** Starts a job in the background and returns it (its fields update as it runs). */
  start(req: WarmRequest): WarmJob {
    return this.launch(req).job;
  }

  /** Runs a job to the end. */
  run(req: WarmRequest): Promise<WarmJob> {
    return this.launch(req).done;
  }

  /** Newest first. */
  list(): WarmJob[] {
    return [...this.jobs.values()].reverse();
  }

  get(id: string): WarmJob | undefined {
    return this.jobs.get(id);
  }

  /** Stops running jobs (berth is shutting down); the fills they started finish on their own. */
  close(): void {
    this.closed = true;
    for (const s of this.draining) s.destroy(new Error('berth is stopping'));
  }

  private launch(req: WarmRequest): { job: WarmJob; done: Promise<WarmJob> } {
    const job: WarmJob = {
      id: randomUUID(),
      state: 'running',
      createdAt: this.deps.now(),
      finishedAt: null,
      source: req.source,
      pin: req.pin,
      platforms: req.platforms === 'all' ? 'all' : req.platforms.map(formatPlatform),
      images: req.images.map((ref) => ({
        ref,
        state: 'pending',
        bytesTotal: 0,
        bytesDone: 0,
        bytesFetched: 0,
        blobsTotal: 0,
        blobsDone: 0,
        error: null,
        digest: null,
        platforms: [],
      })),
    };
    this.jobs.set(job.id, job);
    this.prune();
    const background = <T>(fn: () => Promise<T>) => (this.deps.priority ? this.deps.priority.background(fn) : fn());
    const done = background(async () => {
      const log = this.deps.logger.child({ warmJob: job.id });
      log.info({ images: req.images, platforms: job.platforms, pin: req.pin, source: req.source }, 'warm job started');
      for (const img of job.images) {
        try {
          if (this.closed) throw new Error('berth is stopping');
          await this.warmImage(img, req);
        } catch (err) {
          img.state = 'failed';
          img.error = (err as Error).message;
        }
        log.info(
          { image: img.ref, state: img.state, digest: img.digest, bytesFetched: img.bytesFetched, blobs: img.blobsTotal, err: img.error ?? undefined },
          'warm image finished',
        );
      }
      job.state = job.images.every((i) => i.state === 'done' || i.state === 'cached') ? 'done' : 'failed';
      job.finishedAt = this.deps.now();
      log.info({ state: job.state, ms: job.finishedAt - job.createdAt }, 'warm job finished');
      return job;
    });
    return { job, done };
  }

  private prune(): void {
    const finished = [...this.jobs.values()].filter((j) => j.state !== 'running');
    for (const j of finished.slice(0, Math.max(0, this.jobs.size - MAX_JOBS))) this.jobs.delete(j.id);
  }

  private async warmImage(img: WarmImage, req: WarmRequest): Promise<void> {
    const { cache, repos, catalog } = this.deps;
    img.state = 'running';
    const ref = parseReference(img.ref);
    const target = this.deps.resolve(ref);
    const tagKey = ref.reference.kind === 'tag' ? `${target.key}\u0000${target.repository}\u0000${ref.reference.tag}` : undefined;
    // Remembered from an earlier run, else (after a restart) the record from before this refresh.
    const previous =
      req.replacePinned && tagKey && ref.reference.kind === 'tag'
        ? (this.pinnedTags.get(tagKey) ?? (await repos.tag(target.key, target.repository, ref.reference.tag))?.digest)
        : undefined;
    const top = await cache.manifest(target, ref.reference);
    img.digest = top.digest;
    const parsed = parseManifest(top.body, top.mediaType);
    // Foreign layers are fetched by clients from their `urls`, never through a registry.
    const distributable = (ds: readonly Descriptor[]) => ds.filter((b) => !isNonDistributable(b.mediaType));
    let blobs: Descriptor[] = distributable(parsed.blobs);
    if (isIndexType(parsed.mediaType)) {
      const chosen = selectManifests(parsed.manifests, req.platforms);
      if (chosen.length === 0) {
        const offered = parsed.manifests.flatMap((m) =>
          m.platform?.os && m.platform.architecture
            ? [formatPlatform({ os: m.platform.os, architecture: m.platform.architecture, variant: m.platform.variant })]
            : [],
        );
        throw new Error(
          `index ${top.digest} has no manifest for ${req.platforms === 'all' ? 'any platform' : req.platforms.map(formatPlatform).join(', ')}; it offers ${offered.join(', ') || 'none'}`,
        );
      }
      for (const entry of chosen) {
        const child = await cache.manifest(target, { kind: 'digest', digest: entry.digest });
        blobs.push(...distributable(parseManifest(child.body, child.mediaType).blobs));
        const p = entry.platform;
        if (p?.os && p.architecture) img.platforms.push(formatPlatform({ os: p.os, architecture: p.architecture, variant: p.variant }));
      }
    }
    blobs = [...new Map(blobs.map((b) => [b.digest, b])).values()];
    img.blobsTotal = blobs.length;
    img.bytesTotal = blobs.reduce((n, b) => n + Math.max(0, b.size), 0);
    // Pinning the manifests first protects each blob from eviction the moment it is stored.
    if (req.pin) await catalog.setPinned(top.digest, true);
    await inPool(blobs, this.deps.concurrency ?? 3, (b) => this.fetchBlob(target, b, img));
    // Unpin the old content first: the layers both share end up pinned.
    if (req.pin && previous && previous !== top.digest) await catalog.setPinned(previous, false);
    if (req.pin) await catalog.setPinned(top.digest, true);
    if (req.pin && req.replacePinned && tagKey) this.pinnedTags.set(tagKey, top.digest);
    img.state = img.bytesFetched > 0 ? 'done' : 'cached';
  }

  /** One blob through the cache: a hit counts at once; otherwise the shared fill is followed to the end. */
  private async fetchBlob(target: Target, desc: Descriptor, img: WarmImage): Promise<void> {
    const handle = await this.deps.cache.blob(target, desc.digest);
    try {
      if (handle.outcome === 'hit' || handle.outcome === 'local') {
        img.bytesDone += desc.size >= 0 ? desc.size : (handle.size ?? 0);
        img.blobsDone++;
        return;
      }
      const stream = handle.open();
      this.draining.add(stream);
      try {
        for await (const chunk of stream) {
          img.bytesDone += (chunk as Buffer).length;
          img.bytesFetched += (chunk as Buffer).length;
        }
      } finally {
        this.draining.delete(stream);
      }
      // Still held by the handle, so eviction cannot take it between the transfer and this check.
      const size = await this.deps.blobs.size(desc.digest);
      if (size === undefined) throw new Error(`blob ${desc.digest} was transferred but not stored (is the disk full?)`);
      // The fill records the blob just after its readers finish; pinning needs the row now.
      if (!(await this.deps.index.get(desc.digest))) await this.deps.index.put(desc.digest, size);
      img.blobsDone++;
    } finally {
      await handle.close();
    }
  }
}

/** Runs `work` over items, `width` at a time; stops taking new items after a failure and rethrows it. */
async function inPool<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  if (failure) throw failure.err;
}
