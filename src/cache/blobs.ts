/** @module cache/blobs — pull-through policy for blobs: serve from disk, or join or start the one upstream fill. */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { parseDigest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { BlobStore } from '../storage/blobs.js';
import type { MetadataStore } from '../storage/metadata.js';
import { upstreamError } from '../upstream/client.js';
import { BlobFill, pumpFill } from './fill.js';
import type { Outcome, Target } from './target.js';

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
  readonly metadata: MetadataStore;
  readonly logger: Logger;
}

export class BlobCache {
  /** Fills in progress, owned by this instance: the single-flight table. */
  private readonly fills = new Map<string, BlobFill>();

  constructor(private readonly deps: BlobCacheDeps) {}

  get inFlight(): number {
    return this.fills.size;
  }

  async get(target: Target, digest: string): Promise<BlobHandle> {
    parseDigest(digest);
    const stored = await this.storedSize(digest);
    if (stored !== undefined) {
      this.deps.metadata.touchBlob(digest);
      if (target.upstream) this.deps.metadata.linkBlob(target.key, target.repository, digest);
      return this.storedHandle(digest, stored, target.upstream ? 'hit' : 'local');
    }
    if (!target.upstream) throw blobUnknown(digest);
    const existing = this.fills.get(digest);
    const fill = existing ?? this.startFill(target, digest);
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
    if (stored !== undefined) return { size: stored, outcome: target.upstream ? 'hit' : 'local' };
    if (!target.upstream) throw blobUnknown(digest);
    const fill = this.fills.get(digest);
    if (fill) {
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

  private async storedSize(digest: string): Promise<number | undefined> {
    const size = await this.deps.blobs.size(digest);
    if (size !== undefined && !this.deps.metadata.blob(digest)) {
      // On disk but not recorded: a crash between rename and record. The file was verified before rename.
      this.deps.metadata.putBlob(digest, size);
    }
    return size;
  }

  private storedHandle(digest: string, size: number, outcome: Outcome): BlobHandle {
    return {
      digest,
      size,
      outcome,
      open: (start = 0, end = size - 1) => this.deps.blobs.read(digest, start, end),
      finalSize: async () => size,
    };
  }

  private startFill(target: Target, digest: string): BlobFill {
    const { blobs, metadata, logger } = this.deps;
    const upstream = target.upstream!;
    const fill = new BlobFill(digest, blobs.newTempPath(), blobs.path(digest));
    this.fills.set(digest, fill);
    const started = Date.now();
    void (async () => {
      try {
        const res = await upstream.client.send({ method: 'GET', repository: target.repository, path: `blobs/${digest}` });
        if (res.status !== 200) throw await upstreamError(res, upstream.client.name, `blob ${digest}`, blobUnknown(digest));
        const length = Number(res.headers['content-length']);
        const writer = await blobs.createWriter(parseDigest(digest).algorithm, fill.tempPath);
        fill.markReady(Number.isSafeInteger(length) && length >= 0 ? length : undefined);
        const { size } = await pumpFill(fill, res.body, writer);
        metadata.putBlob(digest, size);
        metadata.linkBlob(target.key, target.repository, digest);
        logger.info({ upstream: upstream.client.name, repository: target.repository, digest, size, ms: Date.now() - started, readers: fill.readers }, 'blob fill complete');
      } catch (err) {
        fill.fail(err as Error);
        logger.error({ upstream: upstream.client.name, repository: target.repository, digest, err: (err as Error).message }, 'blob fill failed; nothing stored');
      } finally {
        this.fills.delete(digest);
      }
    })();
    return fill;
  }
}

export function blobUnknown(digest: string): OciError {
  return new OciError('BLOB_UNKNOWN', `blob ${digest} is not known to this registry`, { detail: { digest } });
}
