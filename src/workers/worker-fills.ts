/** @module workers/worker-fills — routes each fill attempt of a worker: fill it (one worker per digest), or follow the worker that does through its temp file. */
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { FillRouter, RangeCoordinator } from '../ports/fills.js';
import { isNotFound } from '../storage/blob-files.js';
import type { WorkerChannel } from './channel.js';

/** Read size when following another worker's temp file (as cache/fill reads its own). */
const READ_CHUNK = 256 * 1024;
/** Longest wait between looks at a temp file that stopped growing; notices cut it short. */
const MAX_IDLE_MS = 20;

export interface WorkerFillsDeps {
  readonly channel: WorkerChannel;
  /** The site's router (replicas on Redis) when there is one: the filling worker asks it where the bytes come from. */
  readonly inner?: FillRouter;
  /** Where a committed blob lives (a filler's temp file is renamed there). */
  readonly finalPath: (digest: string) => string;
  readonly logger: Logger;
}

type FillRequest = Parameters<FillRouter['open']>[0];

/** The filling worker is gone (or stopped short): worth another attempt, which claims the fill again. */
export class WorkerFillLost extends Error {
  readonly transient = true;
  constructor(digest: string, at: number) {
    super(`the worker filling ${digest} stopped at byte ${at}`);
    this.name = 'WorkerFillLost';
  }
}

/** What a follower knows of the fill it follows; notices from the primary update it. */
interface Followed {
  ready: boolean;
  size: number | null;
  ended: boolean;
  wake: () => void;
}

/**
 * Every worker keeps its own fill per digest (its readers join it as in one process); only the
 * worker holding the primary's claim fetches upstream. The others feed their fill from the
 * filler's temp file, read by position as it grows: no message per chunk, only claim, ready and
 * finish per fill. Each follower verifies the digest itself before its readers get the last byte.
 */
export class WorkerFills implements FillRouter {
  private readonly owned = new Set<string>();
  private readonly followed = new Set<string>();

  /** Upstream range fetches shared with the other workers (each span fetched by one of them). */
  readonly ranges: RangeCoordinator;

  constructor(private readonly deps: WorkerFillsDeps) {
    this.ranges = deps.channel.ranges;
  }

  /** Fills of this worker that follow another worker's (not upstream transfers of their own). */
  get following(): number {
    return this.followed.size;
  }

  retriable(err: unknown): boolean {
    return err instanceof WorkerFillLost || (this.deps.inner?.retriable(err) ?? false);
  }

  /** A range goes to the site's elected replica (through the site's router), when there is a site. */
  range(req: Parameters<NonNullable<FillRouter['range']>>[0]): Promise<AsyncIterable<Uint8Array> | undefined> {
    return this.deps.inner?.range?.(req) ?? Promise.resolve(undefined);
  }

  filling(digest: string): Promise<boolean> {
    return this.deps.channel.filling(digest);
  }

  finished(digest: string): void {
    this.deps.inner?.finished(digest);
    if (this.owned.delete(digest)) this.deps.channel.note({ op: 'finish', digest });
    if (this.followed.delete(digest)) this.deps.channel.note({ op: 'unfollow', digest });
  }

  async open(req: FillRequest): Promise<AsyncIterable<Uint8Array>> {
    const { channel, inner, logger } = this.deps;
    const { digest, offset } = req;
    const state: Followed = { ready: false, size: null, ended: false, wake: () => undefined };
    // Subscribed before claiming: a notice sent right after the reply must not be missed.
    const off = channel.onFill(digest, (kind, size) => {
      if (kind === 'ready') [state.ready, state.size] = [true, size];
      else state.ended = true;
      state.wake();
    });
    let claim;
    try {
      claim = await channel.claim(digest, req.tempPath);
    } catch (err) {
      off();
      throw err;
    }
    if (claim.role === 'filler') {
      off();
      if (this.followed.delete(digest)) logger.warn({ digest, offset }, 'the worker filling this blob stopped; fetching the rest here');
      else if (!this.owned.has(digest)) logger.info({ digest, offset }, 'filling this blob for every worker');
      this.owned.add(digest);
      // Another worker may have committed the blob between this worker's index miss and its
      // claim: copy the committed file rather than fetch it again.
      const committed = await openCommitted(this.deps.finalPath(digest));
      // The committed file may be another inode than a file this fill shares (a filler with a
      // copy of its own committed it): its bytes are then written here, or this fill's commit
      // would put a partial file in place of the blob.
      if (committed) req.own?.();
      const body = committed ? committedBody(committed, offset, req) : await fetchRest(req, inner, logger);
      channel.note({ op: 'ready', digest, size: req.size() ?? null });
      return body;
    }
    this.followed.add(digest);
    try {
      // A fill joined here was never an upstream answer for this repository: check as joiners do.
      await req.visible();
      if (claim.ready) [state.ready, state.size] = [true, state.size ?? claim.size];
      while (!state.ready && !state.ended) await idle(state, 1_000);
      if (!state.ready) throw new WorkerFillLost(digest, offset);
      const followed = await openFollowed(claim.tempPath, this.deps.finalPath(digest));
      if (!followed) throw new WorkerFillLost(digest, offset);
      // One file on disk for every worker: this fill's temp file becomes a name of the filler's,
      // before any reader of this fill is let in (markReady) to open it.
      if (offset === 0 && req.share && !(await req.share(followed.path))) logger.debug({ digest }, "writing a copy of the filling worker's file");
      if (offset === 0) req.markReady(state.size ?? undefined);
      return tail(followed.fh, offset, state, digest, off);
    } catch (err) {
      off();
      throw err;
    }
  }
}

/** The rest of a blob this worker fills now. A file shared with a filler that died holds the bytes it wrote: they are checked from the file, and the upstream asked only for what follows them. */
async function fetchRest(req: FillRequest, inner: FillRouter | undefined, logger: Logger): Promise<AsyncIterable<Uint8Array>> {
  const onDisk = req.shared?.()
    ? await stat(req.tempPath).then(
        (s) => s.size,
        () => 0,
      )
    : 0;
  if (onDisk <= req.offset) {
    req.own?.();
    return inner ? inner.open(req) : req.upstream(req.offset);
  }
  logger.info({ digest: req.digest, offset: req.offset, onDisk }, 'the shared file holds more: checking those bytes from disk, then fetching the rest');
  return (async function* () {
    const fh = await open(req.tempPath, 'r');
    yield* readComplete(fh, req.offset, onDisk, req.digest);
    // From here the bytes are this worker's to write.
    req.own?.();
    const rest = { ...req, offset: onDisk };
    yield* inner ? await inner.open(rest) : await req.upstream(onDisk);
  })();
}

/** A committed blob's file (verified before it was renamed there), with its size; undefined when absent. */
async function openCommitted(path: string): Promise<{ fh: FileHandle; size: number } | undefined> {
  try {
    const fh = await open(path, 'r');
    return { fh, size: (await fh.stat()).size };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function committedBody({ fh, size }: { fh: FileHandle; size: number }, offset: number, req: FillRequest) {
  if (offset === 0) req.markReady(size);
  return readComplete(fh, offset, size, req.digest);
}

/** Bytes `offset` up to `size` of a file that already holds them all (no fill to follow). */
function readComplete(fh: FileHandle, offset: number, size: number, digest: string): AsyncGenerator<Uint8Array> {
  return tail(fh, offset, { ready: true, size, ended: true, wake: () => undefined }, digest, () => undefined);
}

/** The filler's temp file, or the blob it became; undefined when neither is there (the fill failed). */
async function openFollowed(tempPath: string, finalPath: string): Promise<{ fh: FileHandle; path: string } | undefined> {
  for (const path of [tempPath, finalPath]) {
    try {
      return { fh: await open(path, 'r'), path };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return undefined;
}

function idle(state: Followed, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      state.wake = () => undefined;
      resolve();
    }
    state.wake = done;
  });
}

/**
 * Bytes of the followed file from `offset`, as they are written. It ends at the announced size;
 * a fill that ended short (its worker died, or it failed) ends this body with WorkerFillLost,
 * and the follower claims the fill again from the bytes it has.
 */
async function* tail(fh: FileHandle, offset: number, state: Followed, digest: string, off: () => void): AsyncGenerator<Uint8Array> {
  let pos = offset;
  let wait = 1;
  try {
    for (;;) {
      const size = state.size;
      if (size !== null && pos >= size) return;
      // Looked at before reading: a read after the end notice sees every byte ever written.
      const ended = state.ended;
      const want = size !== null ? Math.min(READ_CHUNK, size - pos) : READ_CHUNK;
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead > 0) {
        pos += bytesRead;
        wait = 1;
        yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
        continue;
      }
      if (ended) {
        // Without a size the end is the end; the follower's digest check decides.
        if (size === null) return;
        throw new WorkerFillLost(digest, pos);
      }
      await idle(state, wait);
      wait = Math.min(wait * 2, MAX_IDLE_MS);
    }
  } finally {
    off();
    await fh.close().catch(() => undefined);
  }
}
