/** @module cache/blobs — pull-through policy for blobs: serve from disk, or join or start the one upstream fill. */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { parseDigest } from '../oci/digest.js';
import { OciError, isTransient } from '../oci/errors.js';
import type { BlobStore } from '../storage/blobs.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { FillCoordinator } from '../ports/fills.js';
import type { RepositoryIndex } from '../ports/repository-index.js';
import { upstreamError } from '../upstream/client.js';
import { BlobFill, DEFAULT_RETRY, pumpFill, type FillSource, type RetryPolicy } from './fill.js';
import type { Outcome, Target } from './target.js';
import { LocalFills } from './local-fills.js';
import { NO_CACHE_OBSERVER, counted, type CacheObserver } from './observer.js';

export interface BlobHandle {
  readonly digest: string;
  /** Known for stored blobs and for fills whose upstream sent Content-Length. */
  readonly size: number | undefined;
  readonly outcome: Outcome;
  /** Bytes [start, end] inclusive; end defaults to the last byte. */
  open(start?: number, end?: number): Readable;
  /** Resolves with the final size (waits for a fill without a known size). */
  finalSize(): Promise<number>;
}

export interface BlobCacheDeps {
  readonly blobs: BlobStore;
  readonly index: BlobIndex;
  readonly repos: RepositoryIndex;
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
}

/**
 * How a request from another replica of the site may be answered: `held` only from what this
 * replica stores or is filling now; `fill` may fill it here too, but never forwards to a third.
 */
export type PeerMode = 'held' | 'fill';

/** One byte source beside the upstream: a peer replica, chosen per attempt of a fill. */
export interface FillRouter {
  /** The body from byte `offset` on; calls `upstream` when this replica should fetch it itself. */
  open(req: {
    readonly target: Target;
    readonly digest: string;
    readonly offset: number;
    /** The fill serves another replica's request: it must not be forwarded again. */
    readonly fromPeer: boolean;
    readonly upstream: (offset: number) => Promise<AsyncIterable<Uint8Array>>;
    /** For bodies from a peer: the size it announced (offset 0 only). */
    readonly markReady: (size: number | undefined) => void;
  }): Promise<AsyncIterable<Uint8Array>>;
  /** Whether an error of a peer transfer is worth another attempt even before any byte arrived. */
  retriable(err: unknown): boolean;
  /** The fill ended (stored, passed through or failed): its lease, if any, is released. */
  finished(digest: string): void;
}

export class BlobCache {
  /** Fills in progress, owned by this instance: the single-flight table. */
  private readonly fills: FillCoordinator<BlobFill>;
  /** Open responses per stored digest, so eviction leaves content being streamed alone. */
  private readonly streaming = new Map<string, number>();

  constructor(private readonly deps: BlobCacheDeps) {
    this.fills = deps.fills ?? new LocalFills();
  }

  get inFlight(): number {
    return this.fills.size;
  }

  /** Digests being filled or streamed right now. */
  inUseDigests(): string[] {
    return [...new Set([...this.fills.digests(), ...this.streaming.keys()])];
  }

  /** Being filled or streamed right now. */
  isInUse(digest: string): boolean {
    return this.fills.current(digest) !== undefined || (this.streaming.get(digest) ?? 0) > 0;
  }

  /** `peer`: the request comes from another replica of the site (see PeerMode). */
  async get(target: Target, digest: string, peer?: PeerMode): Promise<BlobHandle> {
    parseDigest(digest);
    const stored = await this.storedSize(digest);
    if (stored !== undefined) {
      await this.ensureVisible(target, digest);
      await this.deps.index.touch(digest);
      return this.storedHandle(digest, stored, target.upstream ? 'hit' : 'local');
    }
    if (!target.upstream) throw blobUnknown(digest);
    const existing = this.fills.current(digest);
    if (!existing && peer === 'held') throw blobUnknown(digest);
    if (existing) await this.ensureVisible(target, digest);
    const fill = existing ?? this.fills.claim(digest, () => this.startFill(target, digest, peer !== undefined)).fill;
    if (!existing) this.deps.onInUseChange?.(this.inUseDigests());
    await fill.ready;
    return {
      digest,
      size: fill.size,
      outcome: existing ? 'joined' : 'miss',
      open: (start = 0, end?: number) => fill.createReader(start, end),
      finalSize: async () => {
        if (fill.size !== undefined) return fill.size;
        await fill.done;
        return fill.written;
      },
    };
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
    const res = await client.send({ method: 'HEAD', repository: target.repository, path: `blobs/${digest}` });
    if (res.status !== 200) throw await upstreamError(res, client.name, `blob ${digest}`, blobUnknown(digest));
    await res.body.dump();
    const size = Number(res.headers['content-length']);
    if (!Number.isSafeInteger(size) || size < 0) throw new OciError('UNAVAILABLE', `upstream ${client.name} sent no Content-Length for blob ${digest}`);
    return { size, outcome: 'miss' };
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
    const res = await client.send({ method: 'HEAD', repository: target.repository, path: `blobs/${digest}` });
    if (res.status !== 200) throw await upstreamError(res, client.name, `blob ${digest}`, blobUnknown(digest));
    await res.body.dump();
    await repos.link(target.key, target.repository, digest);
  }

  private async storedSize(digest: string): Promise<number | undefined> {
    const size = await this.deps.blobs.size(digest);
    if (size !== undefined && !(await this.deps.index.get(digest))) {
      // On disk but not recorded: a crash between rename and record. The file was verified before rename.
      await this.deps.index.put(digest, size);
    }
    return size;
  }

  private storedHandle(digest: string, size: number, outcome: Outcome): BlobHandle {
    return {
      digest,
      size,
      outcome,
      open: (start = 0, end = size - 1) => {
        const stream = this.deps.blobs.read(digest, start, end);
        const first = !this.streaming.has(digest);
        this.streaming.set(digest, (this.streaming.get(digest) ?? 0) + 1);
        if (first) this.deps.onInUseChange?.(this.inUseDigests());
        stream.once('close', () => {
          const n = (this.streaming.get(digest) ?? 1) - 1;
          if (n > 0) this.streaming.set(digest, n);
          else {
            this.streaming.delete(digest);
            this.deps.onInUseChange?.(this.inUseDigests());
          }
        });
        return stream;
      },
      finalSize: async () => size,
    };
  }

  private startFill(target: Target, digest: string, fromPeer: boolean): BlobFill {
    const { blobs, index, repos, logger, router } = this.deps;
    const upstream = target.upstream!;
    const fill = new BlobFill(digest, blobs.newTempPath(), blobs.path(digest));
    const started = this.deps.now();
    const log = { upstream: upstream.client.name, repository: target.repository, digest };
    const source: FillSource = {
      open: (offset) => {
        const upstream = (o: number) => this.openUpstream(target, fill, o);
        if (!router) return upstream(offset);
        return router.open({ target, digest, offset, fromPeer, upstream, markReady: (size) => fill.markReady(size) });
      },
      // Only a transfer that has begun is resumed; a request that never got an answer fails fast
      // (a peer that went away is the exception: another source is tried).
      retriable: (err) => (fill.written > 0 || (router?.retriable(err) ?? false)) && isTransient(err),
    };
    void (async () => {
      try {
        const writer = await blobs.createWriter(parseDigest(digest).algorithm, fill.tempPath);
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
        logger.info({ ...log, size: result.size, stored: result.stored, ms: this.deps.now() - started, readers: fill.readers }, result.stored ? 'blob fill complete' : 'blob passed through without storing (disk full)');
      } catch (err) {
        fill.fail(err as Error);
        logger.error({ ...log, written: fill.written, err: (err as Error).message }, 'blob fill failed; nothing stored');
      } finally {
        router?.finished(digest);
        this.fills.finish(digest, fill);
        this.deps.onInUseChange?.(this.inUseDigests());
      }
    })();
    return fill;
  }

  /** One upstream GET from `offset`: a Range request when resuming, skipping ahead if the upstream ignores it. */
  private async openUpstream(target: Target, fill: BlobFill, offset: number): Promise<AsyncIterable<Uint8Array>> {
    const { client } = target.upstream!;
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const res = await client.send({ method: 'GET', repository: target.repository, path: `blobs/${fill.digest}`, headers });
    const observer = this.deps.observer ?? NO_CACHE_OBSERVER;
    // Every body byte crossed the WAN, skipped ones included.
    const body = counted(res.body, (n) => observer.upstreamBytes(client.name, n));
    if (offset > 0 && res.status === 206) {
      const range = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
      if (range && Number(range[1]) === offset) return body;
      await res.body.dump();
      throw new OciError('UNAVAILABLE', `upstream ${client.name} answered a resume at ${offset} with range ${String(res.headers['content-range'])}`);
    }
    if (res.status !== 200) throw await upstreamError(res, client.name, `blob ${fill.digest}`, blobUnknown(fill.digest));
    if (offset === 0) {
      const length = Number(res.headers['content-length']);
      fill.markReady(Number.isSafeInteger(length) && length >= 0 ? length : undefined);
      return body;
    }
    return skip(body, offset);
  }
}

/** Drops the first `count` bytes: the upstream restarted from zero and those are already written. */
async function* skip(body: AsyncIterable<Uint8Array>, count: number): AsyncGenerator<Uint8Array> {
  let left = count;
  for await (const chunk of body) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}


export function blobUnknown(digest: string): OciError {
  return new OciError('BLOB_UNKNOWN', `blob ${digest} is not known to this registry`, { detail: { digest } });
}
