/** @module cache/eviction — size- and age-bounded eviction: least recently used content goes first, shared content counts once. */
import type { Logger } from 'pino';
import type { BlobStore } from '../storage/blob-files.js';
import type { KeptUse } from '../storage/kept-ranges.js';
import type { BlobIndex, EvictionView } from '../ports/blob-index.js';
import type { BerthConfig } from '../config/types.js';

export interface EvictionLimits {
  /** Bytes; 0 = unbounded. */
  readonly maxsize: number;
  /** Evict down to maxsize * lowwatermark. */
  readonly lowwatermark: number;
  /** Per upstream key: drop content not pulled for this long (0 = never). */
  readonly ttlByUpstream: ReadonlyMap<string, number>;
  /** A blob no manifest references yet is kept this long after it was stored or last read (0 = not kept). */
  readonly unreferencedGraceMs?: number;
  /** Content stored this recently (or needed by a manifest stored this recently) is not evicted for maxsize (0 = no minimum). */
  readonly minAgeMs?: number;
  /** Kept ranges (bytes fetched for ranges of a blob not stored yet) unused this long are removed (0 = only by maxsize). */
  readonly keptAgeMs?: number;
}

/**
 * A pushed layer waits for its manifest, which a client sends only after its last layer; over a
 * slow link that can take a while. Evicting the layer meanwhile fails the push at its last step.
 */
export const UNREFERENCED_GRACE_MS = 60 * 60 * 1000;

/**
 * Content stored this recently is in the middle of something: a push between storing its
 * manifest and queueing its replication, the layers of a manifest a node has just read. When
 * everything older is in use, evicting it is what empties the store.
 */
export const MIN_AGE_MS = 2_000;

/** The limits a config sets: storage.maxsize and lowwatermark, and each upstream's ttl. */
export function evictionLimits(config: BerthConfig): EvictionLimits {
  return {
    maxsize: config.storage.maxsize,
    lowwatermark: config.storage.lowwatermark,
    ttlByUpstream: new Map(config.upstreams.map((u) => [u.name, u.ttlMs])),
    unreferencedGraceMs: UNREFERENCED_GRACE_MS,
    minAgeMs: MIN_AGE_MS,
    keptAgeMs: config.storage.keptranges.ageMs,
  };
}

/** What a plan looks at: the index's view, and the kept ranges on disk. */
export type PlanView = EvictionView & { readonly kept?: readonly KeptUse[] };

/** How often kept ranges are checked for age: often enough that none outlives its age by much. */
export function keptSweepMs(ageMs: number): number {
  return Math.min(Math.max(ageMs / 2, 500), 10 * 60_000);
}

export interface EvictionPlan {
  /** `kept`: the blob's kept ranges, not a stored blob (reason `keptranges`: unused past keptAgeMs). */
  readonly evict: Array<{ digest: string; size: number; reason: 'ttl' | 'size' | 'keptranges'; kept?: true }>;
  readonly totalBefore: number;
  readonly totalAfter: number;
  /** Bytes kept only because they were stored within minAgeMs while the store stayed above target. */
  readonly tooRecentBytes: number;
}

/**
 * Decides what to evict. A blob's age is that of the most recently used manifest that needs it
 * (or its own, if newer), so a layer shared by a hot image stays however old its own access is.
 * Pinned content, content needed by pinned manifests, and content in use are never chosen.
 * With `unreachable`, content that only unreachable upstreams hold is kept too: it could not be
 * fetched again, so evicting it during an outage would turn cached pulls into failures. Both
 * that and the grace for unreferenced blobs (a push whose manifest has not come yet) yield to
 * a full disk (`targetBytes`), as does `minAgeMs`. Kept ranges count by their bytes and take
 * their place in the same least-recently-used order (by their own last use).
 */
export function planEviction(
  view: PlanView,
  limits: EvictionLimits,
  now: number,
  inUse: (digest: string) => boolean,
  targetBytes?: number,
  unreachable?: (upstream: string) => boolean,
): EvictionPlan {
  const effective = new Map<string, number>();
  const stored = new Map<string, number>();
  const pinned = new Set<string>();
  for (const b of view.blobs) {
    effective.set(b.digest, b.lastAccess);
    stored.set(b.digest, b.storedAt ?? 0);
    if (b.pinned) pinned.add(b.digest);
  }
  const later = (m: Map<string, number>, parent: string, child: string): void => {
    const p = m.get(parent);
    if (p !== undefined && p > (m.get(child) ?? -Infinity)) m.set(child, p);
  };
  // Index -> manifest -> layer: three passes carry recency, storage time and pins down every level.
  for (let pass = 0; pass < 3; pass++) {
    for (const { parent, child } of view.edges) {
      later(effective, parent, child);
      later(stored, parent, child);
      if (pinned.has(parent)) pinned.add(child);
    }
  }
  const ttls = new Map<string, number>();
  const holdersOf = new Map<string, string[]>();
  for (const { digest, upstream } of view.holders) holdersOf.set(digest, [...(holdersOf.get(digest) ?? []), upstream]);
  for (const [digest, ups] of holdersOf) {
    // Content any holder keeps forever (ttl 0) is never expired by age.
    const all = ups.map((u) => limits.ttlByUpstream.get(u) ?? 0);
    ttls.set(digest, all.includes(0) ? 0 : Math.max(...all));
  }

  const stranded = (digest: string): boolean => {
    const ups = holdersOf.get(digest);
    return unreachable !== undefined && ups !== undefined && ups.every(unreachable);
  };
  const linked = new Set<string>();
  for (const { parent, child } of view.edges) linked.add(parent).add(child);
  const grace = targetBytes === undefined ? (limits.unreferencedGraceMs ?? 0) : 0;
  const awaitingManifest = (b: { digest: string; lastAccess: number }): boolean => grace > 0 && !linked.has(b.digest) && now - b.lastAccess < grace;
  const kept = (view.kept ?? []).filter((k) => !inUse(k.digest));
  const keptAge = limits.keptAgeMs ?? 0;
  const candidates = [
    ...view.blobs.filter((b) => !pinned.has(b.digest) && !inUse(b.digest) && !stranded(b.digest) && !awaitingManifest(b)),
    ...kept.map((k) => ({ digest: k.digest, size: k.bytes, kept: true as const, lastUse: k.lastUse })),
  ].sort((a, b) => ('kept' in a ? a.lastUse : effective.get(a.digest)!) - ('kept' in b ? b.lastUse : effective.get(b.digest)!));
  const totalBefore = view.blobs.reduce((n, b) => n + b.size, 0) + (view.kept ?? []).reduce((n, k) => n + k.bytes, 0);
  let total = totalBefore;
  const evict: EvictionPlan['evict'] = [];
  const chosen = new Set<string>();
  const keyOf = (c: { digest: string; kept?: true }) => (c.kept ? `kept:${c.digest}` : c.digest);
  for (const c of candidates) {
    if (!('kept' in c) || keptAge <= 0 || now - c.lastUse <= keptAge) continue;
    evict.push({ digest: c.digest, size: c.size, reason: 'keptranges', kept: true });
    chosen.add(keyOf(c));
    total -= c.size;
  }
  for (const b of candidates) {
    if ('kept' in b) continue;
    const ttl = ttls.get(b.digest) ?? 0;
    if (ttl > 0 && now - effective.get(b.digest)! > ttl) {
      evict.push({ digest: b.digest, size: b.size, reason: 'ttl' });
      chosen.add(b.digest);
      total -= b.size;
    }
  }
  const target = targetBytes ?? (limits.maxsize > 0 && total > limits.maxsize ? limits.maxsize * limits.lowwatermark : undefined);
  const minAge = targetBytes === undefined ? (limits.minAgeMs ?? 0) : 0;
  let tooRecentBytes = 0;
  if (target !== undefined) {
    for (const b of candidates) {
      if (total <= target) break;
      if (chosen.has(keyOf(b))) continue;
      // Kept ranges not in use are not in the middle of anything: minAgeMs is for stored content.
      if ('kept' in b) {
        evict.push({ digest: b.digest, size: b.size, reason: 'size', kept: true });
        total -= b.size;
        continue;
      }
      if (now - stored.get(b.digest)! < minAge) {
        tooRecentBytes += b.size;
        continue;
      }
      evict.push({ digest: b.digest, size: b.size, reason: 'size' });
      total -= b.size;
    }
  }
  return { evict, totalBefore, totalAfter: total, tooRecentBytes };
}

export interface EvictorDeps {
  readonly blobs: BlobStore;
  readonly index: BlobIndex;
  readonly logger: Logger;
  readonly now: () => number;
  readonly limits: EvictionLimits;
  /** True for content being streamed or filled by this process. */
  readonly inUse: (digest: string) => boolean;
  /** True while an upstream is down: its content is kept past maxsize and ttl (not on a full disk). */
  readonly unreachable?: (upstream: string) => boolean;
  /** Upstreams other processes of this store (serving workers) find down, read once per pass. */
  readonly downElsewhere?: () => Promise<ReadonlySet<string>>;
  /** Content kept whatever its age or size, read once per pass (what queued replications still need). */
  readonly protected?: () => Promise<ReadonlySet<string>>;
  /** Parent -> child edges the store does not record (a signed manifest -> its signature manifest). */
  readonly extraEdges?: () => ReadonlyArray<{ parent: string; child: string }>;
  /** Told what each pass removed, per reason. */
  readonly onEvicted?: (reason: string, count: number, bytes: number) => void;
}

export interface EvictionResult {
  readonly evicted: number;
  readonly freedBytes: number;
  readonly totalBefore: number;
  readonly totalAfter: number;
}

/** Runs eviction passes one at a time; a trigger during a pass is folded into it. */
export class Evictor {
  private running: Promise<EvictionResult> | undefined;
  private stopped = false;
  /** A pass that kept recent content above maxsize comes back once it has aged. */
  private again: NodeJS.Timeout | undefined;
  private sweeps: NodeJS.Timeout | undefined;

  constructor(private readonly deps: EvictorDeps) {}

  /** Starts a pass when the store (kept ranges included) is above maxsize; cheap to call after every commit. */
  maybeRun(): void {
    const { maxsize } = this.deps.limits;
    if (maxsize <= 0 || this.stopped) return;
    Promise.all([this.deps.index.usage(), this.keptUse()]).then(
      ([{ bytes }, kept]) => {
        if (bytes + kept.reduce((n, k) => n + k.bytes, 0) > maxsize && !this.stopped)
          this.run('maxsize exceeded').catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'eviction pass failed'));
      },
      (err: Error) => this.deps.logger.warn({ err: err.message }, 'could not read the store size for eviction'),
    );
  }

  /** One pass: expired content, then least recently used down to the target. */
  run(reason: string, targetBytes?: number): Promise<EvictionResult> {
    if (this.running) return this.running;
    if (this.stopped) return Promise.resolve({ evicted: 0, freedBytes: 0, totalBefore: 0, totalAfter: 0 });
    this.running = this.pass(reason, targetBytes).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Removes kept ranges unused for keptAgeMs from now on: a blob whose ranges a lazy client read
   * and whose fill never completed (the process stopped, the upstream failed) is not asked again.
   */
  startSweeps(): void {
    const age = this.deps.limits.keptAgeMs ?? 0;
    if (age <= 0 || this.sweeps || this.stopped) return;
    this.sweeps = setInterval(() => {
      this.keptUse().then(
        (kept) => {
          const now = this.deps.now();
          if (!this.stopped && kept.some((k) => now - k.lastUse > age))
            this.run('kept ranges unused').catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'eviction pass failed'));
        },
        (err: Error) => this.deps.logger.warn({ err: err.message }, 'could not list kept ranges'),
      );
    }, keptSweepMs(age));
    this.sweeps.unref();
  }

  private keptUse(): Promise<KeptUse[]> {
    return this.deps.blobs.kept.list();
  }

  /** Before the stores close: no pass starts from now on, and the one running stops at its next blob. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweeps);
    clearTimeout(this.again);
    await this.running?.catch(() => undefined);
  }

  private async pass(reason: string, targetBytes?: number): Promise<EvictionResult> {
    const { blobs, index, logger, now, limits } = this.deps;
    const guarded = (await this.deps.protected?.()) ?? new Set<string>();
    const inUse = (digest: string) => this.deps.inUse(digest) || guarded.has(digest);
    const down = (await this.deps.downElsewhere?.().catch(() => undefined)) ?? new Set<string>();
    const unreachable = (u: string) => down.has(u) || (this.deps.unreachable?.(u) ?? false);
    // A full disk (targetBytes) is a hard limit; maxsize and ttl can wait for the upstream to return.
    const stored = await index.evictionView();
    const extra = this.deps.extraEdges?.() ?? [];
    const kept = await this.keptUse().catch((err: Error) => (logger.warn({ err: err.message }, 'could not list kept ranges'), []));
    const view = { ...stored, kept, ...(extra.length > 0 ? { edges: [...stored.edges, ...extra] } : {}) };
    const plan = planEviction(view, limits, now(), inUse, targetBytes, targetBytes === undefined ? unreachable : undefined);
    let freedBytes = 0;
    let evicted = 0;
    let keptRanges = 0;
    const byReason = new Map<string, { count: number; bytes: number }>();
    for (const { digest, size, reason: why, kept: partial } of plan.evict) {
      if (this.stopped) break;
      // Asked again at the moment of deletion: a pull may have found the blob since the plan was made.
      if (inUse(digest)) continue;
      if (partial) {
        if (!(await blobs.evictKept(digest).catch(() => false))) continue;
      }
      // Forget first: a request arriving meanwhile waits for the delete, then refetches.
      else if (!(await blobs.evict(digest, () => index.forget(digest)))) continue;
      evicted++;
      if (partial) keptRanges++;
      freedBytes += size;
      const r = byReason.get(why) ?? { count: 0, bytes: 0 };
      byReason.set(why, { count: r.count + 1, bytes: r.bytes + size });
    }
    for (const [why, r] of byReason) this.deps.onEvicted?.(why, r.count, r.bytes);
    const totalAfter = plan.totalBefore - freedBytes;
    if (evicted > 0) {
      logger.info(
        { reason, evicted, keptRanges, freedBytes, totalBefore: plan.totalBefore, totalAfter, maxsize: limits.maxsize },
        'evicted least recently used content',
      );
    }
    if (plan.tooRecentBytes > 0 && !this.stopped && this.again === undefined) {
      this.again = setTimeout(() => {
        this.again = undefined;
        this.maybeRun();
      }, limits.minAgeMs ?? 0);
      this.again.unref();
    }
    return { evicted, freedBytes, totalBefore: plan.totalBefore, totalAfter };
  }
}
