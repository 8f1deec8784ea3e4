/** @module cache/blob-cache — pull-through policy for blobs: serve from disk, or join or start the one upstream fill. */
import type { Logger } from 'pino';
import { parseDigest } from '../oci/digest.js';
import { OciError, isTransient } from '../oci/errors.js';
import { blobUnknown, unavailable } from '../oci/error-catalogue.js';
import type { BlobStore, BlobWriter } from '../storage/blob-files.js';
import type { StoredBlob } from '../storage/leases.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { FillCoordinator, FillRouter, PeerMode } from '../ports/fills.js';
import type { ManifestRecords, RepositoryLinks } from '../ports/repository-index.js';
import { headBlob } from '../upstream/registry-api.js';
import { lazyRange } from './lazy-range.js';
import { openFillBody } from './kept-fill.js';
import { UpstreamRanges } from './upstream-ranges.js';
import { BlobFill } from './fill.js';
import { DEFAULT_RETRY, pumpFill, type FillSource, type RetryPolicy } from './fill-pump.js';
import type { Outcome } from '../ports/request-observer.js';
import type { Target } from '../upstream/target.js';
import type { WorkPriority } from '../upstream/budget.js';
import { LocalFills } from './local-fills.js';
import { QuietStart, RangePacer, WholeReaders, paced } from './fill-pacing.js';
import { type SetTimer, unrefTimer } from '../util/unref-timer.js';
import { DEFAULT_RANGE_QUIET_MS } from '../config/defaults.js';
import { NO_CACHE_OBSERVER, type CacheObserver } from './cache-observer.js';
import type { BlobHandle } from './blob-handle.js';

export type { BlobHandle };

export interface BlobCacheDeps {
  readonly blobs: BlobStore;
  readonly index: BlobIndex;
  readonly repos: RepositoryLinks & ManifestRecords;
  /** Who fills which digest; in-process by default. */
  readonly fills?: FillCoordinator<BlobFill>;
  readonly logger: Logger;
  readonly now: () => number;
  readonly retry?: RetryPolicy;
  /** Called once per fill that hits a full disk (eviction runs there). */
  readonly onDiskFull?: (info: Record<string, unknown>) => Promise<void>;
  /** Called after a blob is committed, with its size (the eviction trigger). */
  readonly onStored?: (digest: string, size: number) => void;
  readonly observer?: CacheObserver;
  /** The set of blobs being filled or streamed changed (the in-use record follows it). */
  readonly onInUseChange?: (inUse: string[]) => void;
  /** Where a fill's bytes come from when the site has other replicas (a peer, or the upstream under a lease); absent: the upstream. */
  readonly router?: FillRouter;
  /** Background work for the WAN budget: the whole-blob fill a client's range starts, until a client waits for it. */
  readonly priority?: WorkPriority;
  /** Timers for the deferred start of a range-started fill (cache/fill-pacing); real ones by default. */
  readonly timer?: SetTimer;
  /** How long a blob's ranges stay quiet before the fill they started runs; each upstream's `rangequiet` otherwise. */
  readonly rangeQuietMs?: number;
}

/** Fills one manifest's prefetch runs at once: enough to fill a WAN link, few enough to leave room for clients' own requests. */
export const PREFETCH_CONCURRENCY = 4;

export class BlobCache {
  /** Fills in progress, owned by this instance: the single-flight table. */
  private readonly fills: FillCoordinator<BlobFill>;
  /** A cold blob's ranges asked of the upstream, overlapping ones once. */
  private readonly upstreamRanges: UpstreamRanges;
  /** Clients reading a fill's whole blob: foreground while there are any. */
  private readonly wholeReaders = new WholeReaders<BlobFill>();
  /** A range-started fill waits until its blob's ranges have been quiet a while (keyed by the fill's temp path). */
  private readonly quiet: QuietStart;
  /** Client range fetches under way, per upstream: range-started fills read no further meanwhile. */
  private readonly pacer: RangePacer;

  constructor(private readonly deps: BlobCacheDeps) {
    this.fills = deps.fills ?? new LocalFills();
    const timer = deps.timer ?? unrefTimer;
    this.quiet = new QuietStart(deps.rangeQuietMs ?? DEFAULT_RANGE_QUIET_MS, timer);
    this.pacer = new RangePacer(deps.now, timer);
    this.upstreamRanges = new UpstreamRanges({ ...deps, pacer: this.pacer });
  }

  get inFlight(): number {
    return this.fills.size;
  }

  /** Digests being filled, or held by a reader (a handle not yet closed), right now. */
  inUseDigests(): string[] {
    return [...new Set([...this.fills.digests(), ...this.deps.blobs.heldDigests()])];
  }

  /** Being filled, or held by a reader (a handle not yet closed), right now. */
  isInUse(digest: string): boolean {
    return this.fills.current(digest) !== undefined || this.deps.blobs.isHeld(digest);
  }

  /**
   * A blob found on disk is opened then and there, so it can be served whatever eviction does
   * next; a blob not found (or evicted just before) goes through the fill path like any miss.
   * `peer`: the request comes from another replica of the site (see PeerMode). `ranged`: the
   * client asks for ranges, so a fill it starts waits until they are answered (rangeFirst).
   */
  async get(target: Target, digest: string, peer?: PeerMode, opts: { readonly ranged?: boolean } = {}): Promise<BlobHandle> {
    parseDigest(digest);
    const wasHeld = this.deps.blobs.isHeld(digest);
    const stored = await this.openStored(digest);
    if (stored) {
      try {
        await this.ensureVisible(target, digest);
        await this.deps.index.touch(digest);
      } catch (err) {
        await stored.close();
        throw err;
      }
      if (!wasHeld) this.deps.onInUseChange?.(this.inUseDigests());
      return this.storedHandle(stored, target.upstream ? 'hit' : 'local');
    }
    if (!target.upstream) throw blobUnknown(digest);
    // Held from here: a late reader of the fill opens the committed file, which must still be there.
    const release = await this.deps.blobs.hold(digest);
    try {
      const existing = this.fills.current(digest);
      if (!existing && peer === 'held' && !(await this.deps.router?.filling?.(digest))) throw blobUnknown(digest);
      if (existing) await this.ensureVisible(target, digest);
      // A range of a cold blob goes first; the whole-blob fill would otherwise queue ahead of it on the link.
      let gated = false;
      const rangeFirst = opts.ranged === true && (peer === undefined || peer === 'range') && target.upstream.config.rangefetch;
      const fill =
        existing ??
        this.fills.claim(digest, () => {
          gated = rangeFirst;
          return this.startFill(target, digest, peer !== undefined, gated);
        }).fill;
      if (!existing) this.deps.onInUseChange?.(this.inUseDigests());
      if (gated) await this.upstreamRanges.sizeFirst(target, fill);
      await fill.ready;
      // Ranges need not wait for the fill when the upstream can be asked for them (docs/lazy-pulling.md).
      const lazy = target.upstream.config.rangefetch && fill.size !== undefined;
      // Where this request's upstream ranges are kept, so the fill (or the next one) skips them.
      const kept = lazy ? await this.deps.blobs.kept.forRanges(digest, fill.size!).catch(() => undefined) : undefined;
      // Read again: eviction and the age limit count from now.
      if (kept) await this.deps.blobs.kept.touch(digest, this.deps.now());
      // Bytes the upstream is asked for: once per host and site (a peer's request is never sent on: no loops).
      const upstreamRange = this.upstreamRanges.fetcher(target, digest, kept, peer === undefined);
      // A fill still held back starts once this blob's ranges have been quiet a while (cache/fill-pacing).
      const deferred = opts.ranged === true && !fill.released;
      if (deferred) this.quiet.enter(fill.tempPath);
      const whole = (): (() => void) => {
        this.quiet.now(fill.tempPath);
        fill.release();
        return this.wholeReaders.join(fill);
      };
      return {
        digest,
        size: fill.size,
        outcome: existing ? 'joined' : 'miss',
        ...(lazy
          ? {
              range: async (start: number, end: number) => {
                // Spans another worker kept since this process read the map are read, not fetched again.
                if (this.deps.router?.ranges) await kept?.reload().catch(() => undefined);
                return lazyRange(fill, (s, e) => this.upstreamRanges.flights.fetch(digest, s, e, upstreamRange), start, end, kept);
              },
            }
          : {}),
        // Any read of the whole fill lets a held-back fill start at once, and makes it foreground until the reader leaves.
        open: (start = 0, end?: number) => {
          const leave = whole();
          return fill.createReader(start, end).once('close', leave);
        },
        send: (out, start, end, onBytes) => {
          const leave = whole();
          return fill.send(out, start, end, onBytes, this.deps.blobs.sendBuffers).finally(leave);
        },
        finalSize: async () => {
          if (fill.size !== undefined) return fill.size;
          await fill.done;
          return fill.written;
        },
        close: async () => {
          if (deferred) this.quiet.leave(fill.tempPath, () => fill.release(), this.deps.rangeQuietMs ?? target.upstream?.config.rangequietMs);
          else fill.release();
          this.released(digest, release);
        },
      };
    } catch (err) {
      this.released(digest, release);
      throw err;
    }
  }

  /**
   * Starts the fills of blobs a manifest just fetched from upstream names, a few at a time, so
   * the link is busy while clients are still reading the manifest and config. Stored blobs and
   * fills in progress are skipped; a client asking for a queued blob starts its fill itself.
   */
  prefetch(target: Target, digests: readonly string[], concurrency = PREFETCH_CONCURRENCY): void {
    if (!target.upstream) return;
    const queue = [...new Set(digests)];
    const worker = async (): Promise<void> => {
      for (let d = queue.shift(); d !== undefined; d = queue.shift()) {
        if (this.fills.current(d) || (await this.storedSize(d)) !== undefined) continue;
        const claim = this.fills.claim(d, () => this.startFill(target, d, false));
        if (claim.role !== 'filler') continue;
        this.deps.onInUseChange?.(this.inUseDigests());
        // A failure is logged by the fill; the client that wants the blob tries again itself.
        await claim.fill.done.catch(() => undefined);
      }
    };
    for (let i = 0; i < Math.min(concurrency, queue.length); i++) {
      worker().catch((err: Error) => this.deps.logger.warn({ repository: target.repository, err: err.message }, 'blob prefetch stopped'));
    }
  }

  /** Drops a reader's hold, and tells the in-use record when it was the last. */
  private released(digest: string, release: () => void): void {
    release();
    if (!this.isInUse(digest)) this.deps.onInUseChange?.(this.inUseDigests());
  }

  /** Size of a blob without transferring it: local, from a fill in progress, or an upstream HEAD. */
  async head(target: Target, digest: string): Promise<{ size: number; outcome: Outcome }> {
    parseDigest(digest);
    const stored = await this.storedSize(digest);
    if (stored !== undefined) {
      await this.ensureVisible(target, digest);
      return { size: stored, outcome: target.upstream ? 'hit' : 'local' };
    }
    if (!target.upstream) throw blobUnknown(digest);
    const fill = this.fills.current(digest);
    if (fill) {
      await this.ensureVisible(target, digest);
      await fill.ready;
      if (fill.size !== undefined) return { size: fill.size, outcome: 'joined' };
    }
    const { client } = target.upstream;
    const upstream = await headBlob(client, target.repository, digest);
    if (!upstream) throw blobUnknown(digest);
    if (upstream.size === undefined) throw unavailable(`upstream ${client.name} sent no Content-Length for blob ${digest}`);
    return { size: upstream.size, outcome: 'miss' };
  }

  /**
   * Content is stored once per digest, but a repository sees only what it is known to reference
   * (a manifest of it names the blob, or a fill for it stored it), else what its upstream
   * confirms: otherwise anyone could read a private repository's layers through a public one.
   */
  private async ensureVisible(target: Target, digest: string): Promise<void> {
    const { repos } = this.deps;
    if (await repos.isLinked(target.key, target.repository, digest)) return;
    if (await repos.manifest(target.key, target.repository, digest)) return;
    if (!target.upstream) throw blobUnknown(digest);
    const { client } = target.upstream;
    if (!(await headBlob(client, target.repository, digest))) throw blobUnknown(digest);
    await repos.link(target.key, target.repository, digest);
  }

  private async storedSize(digest: string): Promise<number | undefined> {
    // Held so that a file found is not one an eviction under way has just forgotten.
    const release = await this.deps.blobs.hold(digest);
    try {
      const size = await this.deps.blobs.size(digest);
      if (size !== undefined) await this.adopt(digest, size);
      return size;
    } finally {
      release();
    }
  }

  private async openStored(digest: string): Promise<StoredBlob | undefined> {
    const blob = await this.deps.blobs.open(digest);
    if (!blob) return undefined;
    // A kept descriptor's file was adopted by the reader that opened it; a forgotten row goes with its file (storage/open-files drops it).
    if (blob.reused) return blob;
    try {
      await this.adopt(digest, blob.size);
    } catch (err) {
      // Not adopted: the next reader tries again, with a descriptor of its own.
      this.deps.blobs.forgetOpen(digest);
      await blob.close();
      throw err;
    }
    return blob;
  }

  /** On disk but not recorded: a crash between rename and record. The file was verified before rename. */
  private async adopt(digest: string, size: number): Promise<void> {
    if (!(await this.deps.index.get(digest))) await this.deps.index.put(digest, size);
  }

  private storedHandle(blob: StoredBlob, outcome: Outcome): BlobHandle {
    return {
      digest: blob.digest,
      size: blob.size,
      outcome,
      open: (start = 0, end = blob.size - 1) => blob.stream(start, end),
      send: (out, start, end, onBytes) => blob.send(out, start, end, onBytes),
      sendPart: (out, start, end, onBytes) => blob.send(out, start, end, onBytes, false),
      finalSize: async () => blob.size,
      close: async () => {
        await blob.close();
        if (!this.isInUse(blob.digest)) this.deps.onInUseChange?.(this.inUseDigests());
      },
    };
  }

  /** `gated`: the fill waits for fill.release() before it asks for any byte (see get). */
  private startFill(target: Target, digest: string, fromPeer: boolean, gated = false): BlobFill {
    const { blobs, index, repos, logger, router } = this.deps;
    const upstream = target.upstream!;
    const fill = new BlobFill(digest, blobs.newTempPath(), blobs.path(digest));
    if (!gated) fill.release();
    const started = this.deps.now();
    let writer: BlobWriter | undefined;
    const log = { upstream: upstream.client.name, repository: target.repository, digest };
    const upstreamName = upstream.client.name;
    // Background while no client reads the whole blob (a range-started fill, cache/fill-pacing).
    const background = (): boolean => gated && !this.wholeReaders.has(fill);
    const source: FillSource = {
      open: async (offset) => {
        await fill.gate;
        if (background()) await this.pacer.idle(upstreamName);
        const upstream = (o: number) =>
          openFillBody(target, fill, o, {
            kept: blobs.kept,
            logger,
            ranges: router?.ranges,
            upstreamBytes: (n) => (this.deps.observer ?? NO_CACHE_OBSERVER).upstreamBytes(upstreamName, n),
          });
        const body = await (router
          ? router.open({
              target,
              digest,
              offset,
              fromPeer,
              upstream,
              markReady: (size) => fill.markReady(size),
              tempPath: fill.tempPath,
              size: () => fill.size,
              visible: () => this.ensureVisible(target, digest),
              share: async (path) => (writer ? fill.share(writer, path) : false),
              own: () => fill.own(),
              shared: () => fill.mode === 'shared',
            })
          : upstream(offset));
        // A client's range fetches of this upstream go first: this fill reads no further meanwhile.
        return gated
          ? paced(
              body,
              () => background() && fill.mode !== 'shared',
              () => this.pacer.idle(upstreamName),
            )
          : body;
      },
      // Only a transfer that has begun is resumed; a request that never got an answer fails fast
      // (a peer that went away is the exception: another source is tried).
      retriable: (err) => (fill.written > 0 || (router?.retriable(err) ?? false)) && isTransient(err),
    };
    // A fill a client's range started is background work while no client reads the fill itself
    // (the range's own upstream bytes are that client's, foreground: fetchRange runs in its request).
    const { priority } = this.deps;
    const run = (work: () => Promise<void>) => (gated && priority ? priority.backgroundWhile(background, work) : work());
    void run(async () => {
      try {
        writer = await blobs.createWriter(parseDigest(digest).algorithm, fill.tempPath);
        const result = await pumpFill(fill, source, writer, this.deps.retry ?? DEFAULT_RETRY, {
          now: this.deps.now,
          sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
          onRetry: (attempt, err) => logger.warn({ ...log, attempt, offset: fill.written, err: err.message }, 'upstream transfer interrupted; resuming'),
          onDiskFull: async (err) => {
            // New requests must not join a fill that can no longer be replayed from disk.
            this.fills.finish(digest, fill);
            await this.deps.onDiskFull?.({ ...log, written: fill.written, size: fill.size, err: err.message });
          },
        });
        if (result.stored) {
          await index.put(digest, result.size);
          await repos.link(target.key, target.repository, digest);
          this.deps.onStored?.(digest, result.size);
        }
        logger.info(
          { ...log, size: result.size, stored: result.stored, ms: this.deps.now() - started, readers: fill.readers },
          result.stored ? 'blob fill complete' : 'blob passed through without storing (disk full)',
        );
        // Verified: the kept ranges have served their purpose (and a pass-through on a full disk frees them).
        await blobs.kept.discard(digest).catch((err: Error) => logger.warn({ ...log, err: err.message }, 'could not remove kept ranges'));
      } catch (err) {
        fill.fail(err as Error);
        // Some kept byte may be wrong: none is trusted again.
        if (err instanceof OciError && (err.code === 'DIGEST_INVALID' || err.code === 'SIZE_INVALID')) {
          await blobs.kept.discard(digest).catch(() => undefined);
          logger.warn({ ...log }, 'blob failed its digest check; its kept ranges are discarded');
        }
        // A client asking for a blob the upstream does not have is not a fault here.
        const unknown = err instanceof OciError && err.code === 'BLOB_UNKNOWN';
        logger[unknown ? 'info' : 'error'](
          { ...log, written: fill.written, err: (err as Error).message },
          unknown ? 'blob unknown upstream; nothing stored' : 'blob fill failed; nothing stored',
        );
      } finally {
        this.quiet.forget(fill.tempPath);
        blobs.kept.forget(digest);
        router?.finished(digest);
        this.fills.finish(digest, fill);
        this.deps.onInUseChange?.(this.inUseDigests());
      }
      // The fill runs on after the request that started it; its own failures are caught above.
    }).catch((err: Error) => logger.error({ ...log, err: err.message }, 'blob fill bookkeeping failed'));
    return fill;
  }
}
