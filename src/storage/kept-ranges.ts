/** @module storage/kept-ranges — bytes of a blob fetched for ranges, kept at their offsets in a sparse partial file beside a persisted map of what it holds, so the blob's fill (after a restart too) fetches only the rest (docs/lazy-pulling.md). */
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { isDigest } from '../oci/digest.js';
import { addInterval, isPresenceMap, nextStart, presentEnd, type Interval } from '../util/intervals.js';

const READ_CHUNK = 256 * 1024;

/** What `<partial>.ranges` holds. */
interface RangesFile {
  readonly size: number;
  readonly ranges: Interval[];
}

/**
 * The kept ranges of one blob. The map only ever claims bytes already written and synced to the
 * file, so a crash leaves it short of the file, never ahead. It is not the content's proof: the
 * fill checks the whole blob's digest, and a failure discards everything kept.
 */
export class KeptRanges {
  private list: Interval[];
  private saving: Promise<void> = Promise.resolve();
  /** Spans whose bytes are arriving right now (a range fetch being kept): a fill waits for them rather than fetching them too. */
  private readonly pending = new Set<{ readonly start: number; readonly end: number; readonly done: Promise<void> }>();
  /** Set by discard: nothing more is written or recorded. */
  discarded = false;

  constructor(
    readonly digest: string,
    readonly size: number,
    readonly path: string,
    list: Interval[],
  ) {
    this.list = list;
  }

  get intervals(): readonly Interval[] {
    return this.list;
  }

  /** The end of the kept span holding byte `pos`, or undefined when it is not kept. */
  presentEnd(pos: number): number | undefined {
    return presentEnd(this.list, pos);
  }

  /** The start of the next kept span after `pos` (not kept), or undefined; `arriving`: spans still being kept count too. */
  nextStart(pos: number, arriving = false): number | undefined {
    const kept = nextStart(this.list, pos);
    if (!arriving) return kept;
    let next = kept ?? Infinity;
    for (const p of this.pending) if (p.start > pos) next = Math.min(next, p.start);
    return next === Infinity ? undefined : next;
  }

  /** Settles when the span being kept that holds byte `pos` is done; undefined when none is arriving there. */
  arrivingAt(pos: number): Promise<void> | undefined {
    for (const p of this.pending) if (p.start <= pos && pos < p.end) return p.done;
    return undefined;
  }

  /**
   * Passes `body` (the blob's bytes from `start` on) through, writing each chunk at its offset
   * once handed on; what was written is recorded once the body ends, is cut or fails.
   * Keeping is best effort: a write that fails (a full disk) stops keeping, never the body.
   */
  async *keep(body: AsyncIterable<Uint8Array>, start: number, end: number, onError: (err: Error) => void): AsyncGenerator<Uint8Array> {
    let fh: FileHandle | undefined;
    let pos = start;
    let keeping = true;
    let settle!: () => void;
    const arriving = { start, end: end + 1, done: new Promise<void>((r) => (settle = r)) };
    this.pending.add(arriving);
    try {
      for await (const chunk of body) {
        // The client first: a disk write slowed by others (a sync holds a thread of the pool) does
        // not add to its wait. What is recorded is only what was written, a chunk left here included.
        yield chunk;
        if (keeping && !this.discarded) {
          try {
            if (!fh) {
              await mkdir(dirname(this.path), { recursive: true });
              fh = await open(this.path, constants.O_RDWR | constants.O_CREAT, 0o644);
            }
            await writeAll(fh, chunk, pos);
          } catch (err) {
            keeping = false;
            onError(err as Error);
          }
        }
        if (keeping) pos += chunk.length;
      }
    } finally {
      if (fh) {
        const synced = await fh.datasync().then(
          () => true,
          (err: Error) => (onError(err), false),
        );
        await fh.close().catch(() => undefined);
        if (synced && pos > start) await this.record(start, Math.min(pos, this.size)).catch(onError);
      }
      this.pending.delete(arriving);
      settle();
    }
  }

  /** Adds [start, end) to the map and saves it (write to a new name, then rename: a reader sees the old map or the new, whole). */
  async record(start: number, end: number): Promise<void> {
    if (this.discarded) return;
    this.list = addInterval(this.list, start, end);
    const save = async (): Promise<void> => {
      if (this.discarded) return;
      // Another worker of the host may have recorded spans of its own meanwhile (a map it holds
      // is of bytes it synced to this file): kept, not overwritten.
      await this.reload();
      const temp = `${this.path}.ranges.${randomUUID()}`;
      const content: RangesFile = { size: this.size, ranges: this.list };
      await writeFile(temp, JSON.stringify(content));
      await rename(temp, `${this.path}.ranges`).catch(async (err: unknown) => {
        await rm(temp, { force: true });
        throw err;
      });
    };
    this.saving = this.saving.then(save, save);
    await this.saving;
  }

  /** Merges in the spans the map on disk holds: those other workers of the host recorded since it was loaded. */
  async reload(): Promise<void> {
    const theirs = parse(await readFile(`${this.path}.ranges`, 'utf8').catch(() => ''));
    if (this.discarded || theirs?.size !== this.size) return;
    for (const [s, e] of theirs.ranges) this.list = addInterval(this.list, s, e);
  }

  /** Kept bytes [start, end) from the file; only spans the map holds. */
  async *read(start: number, end: number): AsyncGenerator<Buffer> {
    const fh = await open(this.path, 'r');
    try {
      for (let pos = start; pos < end;) {
        const want = Math.min(READ_CHUNK, end - pos);
        const buf = Buffer.allocUnsafe(want);
        const { bytesRead } = await fh.read(buf, 0, want, pos);
        if (bytesRead === 0) throw new Error(`kept bytes of ${this.digest} end at ${pos}, before ${end}`);
        pos += bytesRead;
        yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }

  /** Waits for a save under way, then removes file and map. */
  async remove(): Promise<void> {
    this.discarded = true;
    await this.saving.catch(() => undefined);
    await rm(`${this.path}.ranges`, { force: true });
    await rm(this.path, { force: true });
  }
}

/** One blob's kept ranges as eviction sees them (read from disk, so every process and a restart agree). */
export interface KeptUse {
  readonly digest: string;
  /** Bytes the map holds (for a data file without a map, left by a crash: its allocated bytes). */
  readonly bytes: number;
  /** Last written or read (ms): the newer mtime of map and file. */
  readonly lastUse: number;
}

/** Every blob's kept ranges in this process, loaded from disk on first use. */
export class KeptStore {
  private readonly loaded = new Map<string, KeptRanges>();

  /** `dir`: the partial/ directory `pathOf` places files under (one folder per algorithm). */
  constructor(
    private readonly pathOf: (digest: string) => string,
    private readonly dir?: string,
  ) {}

  /** Every blob with kept bytes on disk, whoever kept them: what counts toward storage.maxsize. */
  async list(): Promise<KeptUse[]> {
    if (!this.dir) return [];
    const out: KeptUse[] = [];
    for (const algorithm of ['sha256', 'sha512']) {
      const base = join(this.dir, algorithm);
      const names = new Set(await readdir(base).catch(() => [] as string[]));
      for (const name of names) {
        if (!isDigest(`${algorithm}:${name}`)) continue;
        const use = await usage(`${algorithm}:${name}`, join(base, name), names.has(`${name}.ranges`)).catch(() => undefined);
        if (use) out.push(use);
      }
    }
    return out;
  }

  /** Marks the blob's kept ranges used at `now` (ms), so eviction and the age limit count from here. */
  async touch(digest: string, now: number): Promise<void> {
    const when = new Date(now);
    await utimes(`${this.pathOf(digest)}.ranges`, when, when).catch(() => undefined);
  }

  /** The kept ranges already in memory, if any (no disk access: the fill asks this per chunk). */
  current(digest: string): KeptRanges | undefined {
    return this.loaded.get(digest);
  }

  /**
   * The blob's kept ranges, from memory or disk; undefined when none are kept. A map for another
   * size than `size` (when given), or one that does not parse, is discarded with its file.
   */
  async load(digest: string, size?: number): Promise<KeptRanges | undefined> {
    const known = this.loaded.get(digest);
    if (known) return size === undefined || known.size === size ? known : (await this.discard(digest), undefined);
    const path = this.pathOf(digest);
    let text: string;
    try {
      text = await readFile(`${path}.ranges`, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const parsed = parse(text);
    const found = this.loaded.get(digest);
    if (found) return found;
    if (!parsed || (size !== undefined && parsed.size !== size)) {
      await new KeptRanges(digest, 0, path, []).remove();
      return undefined;
    }
    const kept = new KeptRanges(digest, parsed.size, path, parsed.ranges);
    this.loaded.set(digest, kept);
    return kept;
  }

  /** The blob's kept ranges, new and empty when none are: ranges fetched now are kept there. */
  async forRanges(digest: string, size: number): Promise<KeptRanges> {
    const kept = (await this.load(digest, size)) ?? this.loaded.get(digest);
    if (kept) return kept;
    const fresh = new KeptRanges(digest, size, this.pathOf(digest), []);
    this.loaded.set(digest, fresh);
    return fresh;
  }

  /** Drops the in-memory copy (the fill ended); what is on disk stays for the next fill. */
  forget(digest: string): void {
    this.loaded.delete(digest);
  }

  /** Removes every kept range of the blob: it is stored now, or its digest failed. */
  async discard(digest: string): Promise<void> {
    const kept = this.loaded.get(digest) ?? new KeptRanges(digest, 0, this.pathOf(digest), []);
    this.loaded.delete(digest);
    await kept.remove();
  }
}

/** A data file's use: its map's bytes and the newer mtime of the two; undefined once removed. */
async function usage(digest: string, path: string, mapped: boolean): Promise<KeptUse | undefined> {
  const data = await stat(path);
  if (!mapped) return { digest, bytes: data.blocks * 512, lastUse: data.mtimeMs };
  const map = `${path}.ranges`;
  const [text, meta] = await Promise.all([readFile(map, 'utf8'), stat(map)]);
  const parsed = parse(text);
  const bytes = parsed ? parsed.ranges.reduce((n, [s, e]) => n + e - s, 0) : data.blocks * 512;
  return { digest, bytes, lastUse: Math.max(data.mtimeMs, meta.mtimeMs) };
}

function parse(text: string): RangesFile | undefined {
  try {
    const value = JSON.parse(text) as Partial<RangesFile>;
    if (typeof value.size !== 'number' || !Number.isSafeInteger(value.size) || value.size < 0) return undefined;
    return isPresenceMap(value.ranges, value.size) ? { size: value.size, ranges: value.ranges } : undefined;
  } catch {
    return undefined;
  }
}

async function writeAll(fh: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  for (let off = 0; off < chunk.length;) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, position + off);
    off += bytesWritten;
  }
}
