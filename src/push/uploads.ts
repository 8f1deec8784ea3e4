/** @module push/uploads — blob upload sessions: streamed to temp files, resumable across restarts, verified on completion, expired when abandoned. */
import { randomUUID } from 'node:crypto';
import { readdir, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { parseDigest } from '../oci/digest.js';
import { type OciError, diskFull, isDiskFull } from '../oci/errors.js';
import { blobUploadUnknown, sizeInvalid, tooManyRequests, uploadRangeInvalid } from '../oci/error-catalogue.js';
import type { BlobStore, BlobWriter } from '../storage/blob-files.js';
import type { UploadRow, UploadSessions } from '../ports/upload-sessions.js';
import type { Target } from '../upstream/target.js';
import { StoreLayout } from '../storage/layout.js';
import { LocalUploadBound } from '../storage/upload-bound.js';
import { MAX_UPLOADS_PER_CLIENT, type UploadBound } from '../ports/upload-sessions.js';

export interface UploadPurging {
  readonly enabled: boolean;
  /** An upload with no request for this long is removed. */
  readonly ageMs: number;
  readonly intervalMs: number;
}

export interface UploadDeps {
  readonly blobs: BlobStore;
  readonly rows: UploadSessions;
  readonly logger: Logger;
  readonly now: () => number;
  readonly purging: UploadPurging;
  /** The per-client count of open uploads (the primary's, when several workers serve); default: this process's own. */
  readonly bound?: UploadBound;
  /** Told when a write met a full disk (eviction runs, the reserve comes back later). */
  readonly onDiskFull?: (where: string, err: unknown) => void;
}

/** An upload in progress: its row and, while this process holds it, the open writer. */
export interface UploadSession {
  readonly id: string;
  readonly key: string;
  readonly repository: string;
  readonly tempPath: string;
  writer: BlobWriter | undefined;
  opening?: Promise<BlobWriter> | undefined;
  /** A request is reading into this upload right now. */
  busy: boolean;
  /** Cancelled (DELETE) while a request was still writing: that request stops at its next chunk. */
  cancelled?: boolean;
  /** The client address that opened it, for the per-client bound. */
  owner?: string;
}

/** A chunk's place in the upload (`Content-Range: start-end`, inclusive). */
export interface ChunkRange {
  readonly start: number;
  readonly end: number;
}

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class UploadManager {
  /** Sessions this process has touched since it started, owned by the instance. */
  private readonly sessions = new Map<string, UploadSession>();
  /** Open uploads per client address. */
  private readonly bound: UploadBound;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: UploadDeps) {
    this.bound = deps.bound ?? new LocalUploadBound();
  }

  /**
   * Cleans up (see cleanUp), then sweeps periodically. `cleanUp: false`: a serving worker, whose
   * primary cleaned up before any worker started (now another worker may be between file and row).
   */
  async start(cleanUp = true): Promise<void> {
    const { logger, purging } = this.deps;
    if (cleanUp) await this.cleanUp();
    if (purging.enabled) {
      this.timer = setInterval(() => void this.sweep().catch((err: Error) => logger.warn({ err: err.message }, 'upload purge failed')), purging.intervalMs);
      this.timer.unref();
    }
  }

  /** Removes temp files without a row, rows without a file (what a crash between the two leaves), and expired uploads. */
  async cleanUp(): Promise<void> {
    const removed = (await this.removeOrphans()) + (await this.sweep());
    if (removed > 0) this.deps.logger.info({ removed }, 'removed abandoned uploads');
  }

  private async removeOrphans(): Promise<number> {
    const { blobs, rows } = this.deps;
    const known = new Map((await rows.all()).map((r) => [r.id, r]));
    let removed = 0;
    for (const name of await readdir(blobs.uploadsDir)) {
      if (!known.has(name)) {
        await rm(join(blobs.uploadsDir, name), { force: true, recursive: true });
        removed++;
      }
    }
    for (const row of known.values()) {
      const present = await stat(this.pathOf(row.id)).then(
        () => true,
        () => false,
      );
      if (!present) {
        await rows.delete(row.id);
        removed++;
      }
    }
    return removed;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.sessions.values()].map(async (s) => s.writer?.release().catch(() => undefined)));
    this.sessions.clear();
  }

  /** Uploads idle for longer than the purge age go: file, row and session. */
  async sweep(): Promise<number> {
    const { rows, now, purging, logger } = this.deps;
    if (!purging.enabled) return 0;
    let removed = 0;
    for (const row of await rows.all()) {
      if (now() - row.updatedAt <= purging.ageMs || this.sessions.get(row.id)?.busy) continue;
      await this.discard(row.id);
      logger.info({ upload: row.id, repository: row.repository, idleMs: now() - row.updatedAt }, 'expired an abandoned upload');
      removed++;
    }
    return removed;
  }

  async create(target: Target, owner?: string): Promise<UploadSession> {
    const id = randomUUID();
    if (owner !== undefined && !(await this.bound.open(owner, id))) {
      throw tooManyRequests(`this client has ${MAX_UPLOADS_PER_CLIENT} uploads open; finish or cancel some (DELETE) before starting more`, 5);
    }
    const session: UploadSession = { id, key: target.key, repository: target.repository, tempPath: this.pathOf(id), writer: undefined, busy: false, owner };
    try {
      session.writer = await this.deps.blobs.createWriter('sha256', session.tempPath);
      // No descriptor is held between requests: each one that writes opens the file again.
      await session.writer.release();
      await this.deps.rows.insert(id, target.key, target.repository);
    } catch (err) {
      this.bound.close(id);
      // A session that was not created leaves nothing: its file goes (the row was its last step).
      await rm(session.tempPath, { force: true });
      throw this.refused(err, 'the upload session');
    }
    this.sessions.set(id, session);
    return session;
  }

  /** The session for an upload URL; after a restart it is rebuilt from its row and temp file. */
  async get(target: Target, id: string): Promise<UploadSession> {
    if (!UPLOAD_ID.test(id)) throw blobUploadUnknown(id);
    const row = await this.deps.rows.get(id);
    if (!row || row.upstream !== target.key || row.repository !== target.repository) throw blobUploadUnknown(id);
    let session = this.sessions.get(id);
    if (!session) {
      session = { id, key: row.upstream, repository: row.repository, tempPath: this.pathOf(id), writer: undefined, busy: false };
      this.sessions.set(id, session);
    }
    if (session.writer && !session.busy && !session.opening && (await this.sizeOnDisk(session)) !== session.writer.bytesWritten) {
      // Another process serving the same store (a worker, or this one before a restart) wrote
      // to the upload since: the hash state held here is stale, so the file is read again.
      session.writer = undefined;
    }
    if (!session.writer) {
      // Concurrent first requests after a restart share one reopening of the file.
      session.opening ??= this.deps.blobs.resumeWriter(session.tempPath).then(async (w) => {
        await w.release();
        return w;
      });
      try {
        session.writer = await session.opening;
      } catch (err) {
        // A vanished file ends the upload; any other I/O error is reported as what it is.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await this.discard(id);
        throw blobUploadUnknown(id);
      } finally {
        session.opening = undefined;
      }
    }
    return session;
  }

  /** Bytes received so far. */
  offset(session: UploadSession): number {
    return session.writer?.bytesWritten ?? 0;
  }

  /**
   * Appends a request body. With a range, it must start where the upload stands (else 416) and
   * the body must be exactly that long. Memory stays flat: each chunk is written before the next is read.
   */
  async append(session: UploadSession, body: AsyncIterable<Uint8Array>, range: ChunkRange | undefined, length: number | undefined): Promise<number> {
    const writer = session.writer!;
    const start = writer.bytesWritten;
    if (session.busy) throw rangeError(session, start, 'another request is writing to this upload');
    if (range) {
      if (range.start !== start || range.end < range.start)
        throw rangeError(session, start, `chunk ${range.start}-${range.end} does not start at offset ${start}`);
      if (length !== undefined && length !== range.end - range.start + 1)
        throw rangeError(session, start, `Content-Length ${length} does not match Content-Range ${range.start}-${range.end}`);
    }
    session.busy = true;
    let failed = false;
    try {
      for await (const chunk of body) {
        if (session.cancelled) throw blobUploadUnknown(session.id);
        await writer.write(chunk);
      }
      if (session.cancelled) throw blobUploadUnknown(session.id);
    } catch (err) {
      failed = true;
      if (isDiskFull(err)) {
        // Nothing this request wrote stays: the space goes back, and the hash is taken again
        // from the file (next request) so the upload stands where it stood before.
        await truncate(session.tempPath, start).catch(() => undefined);
        session.writer = undefined;
        throw this.refused(err, 'the upload');
      }
      // Keep the bytes that arrived whole; a write cut short must not leave a tail the hash never saw.
      await truncate(session.tempPath, writer.bytesWritten).catch(() => undefined);
      throw err;
    } finally {
      session.busy = false;
      await writer.release().catch(() => undefined);
      // A full disk may refuse the row's update too: the body's own error is the one to report.
      if (!session.cancelled)
        await this.deps.rows.touch(session.id).catch((err: unknown) => {
          if (!failed) throw err;
        });
    }
    const received = writer.bytesWritten - start;
    if (range && received !== range.end - range.start + 1) {
      throw sizeInvalid(
        `chunk ${range.start}-${range.end} announced ${range.end - range.start + 1} bytes but ${received} arrived; the upload now stands at ${writer.bytesWritten}`,
      );
    }
    return writer.bytesWritten;
  }

  /**
   * Verifies the whole upload against the digest and publishes it as a blob. Either way the
   * upload is over: a mismatch discards it, as distribution does.
   */
  async finish(session: UploadSession, digest: string): Promise<{ digest: string; size: number }> {
    const { algorithm } = parseDigest(digest);
    let writer = session.writer!;
    if (session.busy) throw rangeError(session, writer.bytesWritten, 'another request is writing to this upload');
    session.busy = true;
    try {
      if (writer.algorithm !== algorithm) {
        // Hashed as sha256 while streaming; another algorithm means one more pass over the file.
        await writer.release();
        writer = session.writer = await this.deps.blobs.resumeWriter(session.tempPath, algorithm);
      }
      return await writer.commit(digest);
    } finally {
      await writer.release().catch(() => undefined);
      session.writer = undefined;
      this.forget(session);
      await this.deps.rows.delete(session.id);
      await rm(session.tempPath, { force: true });
    }
  }

  async cancel(session: UploadSession): Promise<void> {
    await this.discard(session.id);
  }

  /**
   * Ends an upload: row, file and session. One being written to right now is only marked: its
   * request stops at the next chunk and closes the file itself (closing it here would pull the
   * descriptor from under a write in flight).
   */
  private async discard(id: string): Promise<void> {
    const session = this.sessions.get(id);
    if (session) this.forget(session);
    else this.bound.close(id);
    if (session?.busy) session.cancelled = true;
    else await session?.writer?.release().catch(() => undefined);
    // The file first: on a full disk its space is what lets the row's delete be written.
    await rm(this.pathOf(id), { force: true });
    await this.deps.rows.delete(id);
  }

  /** A full disk is answered 507 (and told, so space is freed); any other error stays what it is. */
  private refused(err: unknown, what: string): unknown {
    if (!isDiskFull(err)) return err;
    this.deps.onDiskFull?.(what, err);
    return diskFull(what);
  }

  /** Counted by id, not by this session's owner: the upload may have been opened in another worker. */
  private forget(session: UploadSession): void {
    if (this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session.id);
    this.bound.close(session.id);
  }

  private async sizeOnDisk(session: UploadSession): Promise<number | undefined> {
    return stat(session.tempPath).then(
      (st) => st.size,
      () => undefined,
    );
  }

  private pathOf(id: string): string {
    return new StoreLayout(this.deps.blobs.root).upload(id);
  }

  /** For status answers: what a row says about an upload. */
  row(id: string): Promise<UploadRow | undefined> {
    return this.deps.rows.get(id);
  }
}

function rangeError(session: UploadSession, offset: number, why: string): OciError {
  return uploadRangeInvalid(why, session.id, offset, rangeHeader(offset));
}

/** The Range header of an upload at `offset` bytes (distribution answers 0-0 for an empty one). */
export function rangeHeader(offset: number): string {
  return `0-${Math.max(0, offset - 1)}`;
}
