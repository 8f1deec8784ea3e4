/** @module ops/idle-gc — one full garbage collection when the process goes quiet after work, so idle memory returns to its level at start. */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadMallocTrim } from '../util/malloc-trim.js';

/**
 * Buffers a transfer leaves behind (an upload's socket chunks, copied blob reads) are memory
 * outside V8's heap, and the digests a start-up reconciliation listed are dead objects in its old
 * generation. V8 frees both only at a full collection, which an idle process never reaches:
 * after one 64 MiB push, 12 MiB of dead buffers kept a single process at 90 MiB instead of 71;
 * after reconciling 100k blobs, 19 MiB of dead heap kept it at 102 instead of 86
 * (docs/performance.md). A full collection takes about 20 ms of CPU.
 */
export interface IdleCollectorOptions {
  /** Bytes in use now: V8's old generation (live and not yet collected) and memory outside the heap. */
  readonly held: () => number;
  /** Runs a full collection. */
  readonly collect: () => void;
  /** After a collection: gives the C allocator's free pages back (what the collection freed outside V8, and SQLite's). */
  readonly trim?: () => void;
  /** How often to look; two looks in a row within QUIET_BYTES of each other mean the process is quiet. */
  readonly intervalMs?: number;
  /** How much above the level after the last collection is worth a collection. */
  readonly slackBytes?: number;
}

const INTERVAL_MS = 5_000;
const SLACK_BYTES = 4 * 1024 * 1024;
/** A quiet process still allocates a little (a metrics sample, a health check). */
const QUIET_BYTES = 1024 * 1024;

export class IdleCollector {
  private timer: NodeJS.Timeout | undefined;
  private last: number | undefined;
  private floor: number;

  constructor(private readonly opts: IdleCollectorOptions) {
    this.floor = opts.held();
  }

  /** Collects and trims now: a one-off piece of work (the start-up reconciliation) is over. */
  collectNow(): void {
    this.opts.collect();
    this.opts.trim?.();
    this.floor = this.opts.held();
    this.last = this.floor;
  }

  /** One look: collects when the memory held is well above its floor and barely moved since the last look. */
  tick(): boolean {
    const now = this.opts.held();
    const quiet = this.last !== undefined && Math.abs(now - this.last) < QUIET_BYTES;
    this.last = now;
    // Busy (the figure moves): a collection now would only slow the transfers and be outgrown.
    if (!quiet || now < this.floor + (this.opts.slackBytes ?? SLACK_BYTES)) {
      this.floor = Math.min(this.floor, now);
      return false;
    }
    this.collectNow();
    return true;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.opts.intervalMs ?? INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * V8's full collection as a function, or undefined where it cannot be had. Node exposes it only
 * with --expose-gc; setting the flag at run time makes a new context's global `gc` available.
 */
export function fullCollection(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    // The function stays; the flag goes back, so V8's flags match those of the bundle's code
    // cache, which V8 refuses when any flag differs (src/bundle-loader.ts).
    setFlagsFromString('--no-expose-gc');
    return typeof gc === 'function' ? () => void gc() : undefined;
  } catch {
    return undefined;
  }
}

/** The collector of this process: undefined when no full collection can be asked for. */
export function idleCollector(): IdleCollector | undefined {
  const collect = fullCollection();
  // The young generation is left out: it fills and empties with every small allocation, so its
  // figure moves even in a quiet process, and a scavenge already frees it.
  const held = () => {
    let old = 0;
    for (const space of getHeapSpaceStatistics()) if (!space.space_name.startsWith('new_')) old += space.space_used_size;
    // Buffers' memory as Node's allocator counts it (V8's external figure can miss it).
    return old + process.memoryUsage().arrayBuffers;
  };
  return collect ? new IdleCollector({ held, collect, trim: lazyTrim() }) : undefined;
}

/** malloc_trim, bound at its first use (koffi is not loaded before the process is ready): that first trim runs once bound. */
function lazyTrim(): () => void {
  let bound: Promise<(() => void) | undefined> | undefined;
  return () => {
    bound ??= loadMallocTrim();
    bound.then((trim) => trim?.()).catch(() => undefined);
  };
}
