/** @module bench/scenarios — cold pulls and the roll-out through a cold cache, each on a fresh cache process with a fresh root */
import type { BuiltImage } from '../test/fixtures/image.js';
import { sleep } from '../test/fixtures/proc.js';
import type { Registry } from '../test/fixtures/registry.js';
import { type CacheKind, type CacheUnderTest, type LogErrors, logErrors, startCache } from './caches.js';
import type { Cleanup } from './cleanup.js';
import { startLink } from './link.js';
import { treePids } from './anchors.js';
import { type MemSummary, MemoryWatch, treeCpuSeconds } from './memory.js';
import { type BatchResult, type PullTarget, pullBatch } from './pulls.js';
import { type UpstreamSnapshot, diff, settle, snapshot } from './upstream.js';

export interface BenchConfig {
  imageMiB: number;
  layers: number;
  /** Throttled link rate in bytes per second (decimal MB/s * 1e6). */
  rateBps: number;
  nodes: number;
  /** Nodes in the site roll-out (rollout60). */
  siteNodes: number;
  /** Whole-image pulls per warm client. */
  warmRounds: number;
  warmClients: number;
  /** Warm serving runs per server, for ranges on a noisy machine. */
  repeats: number;
  only: Array<'idle' | 'cold' | 'footer' | 'lazywhole' | 'lazystart' | 'parallel' | 'rollout' | 'warm' | 'rollout60'>;
  coldLevels: number[];
  /** Keep each cache's temp dir (config, log, store) for a look afterwards. */
  keepDirs: boolean;
}

export interface Ctx {
  cfg: BenchConfig;
  registry: Registry;
  image: BuiltImage;
  repository: string;
  reference: string;
  cleanup: Cleanup;
  log: (msg: string) => void;
  /** Every cache process's memory summary, for the overall peak. */
  memory: Array<{ kind: CacheKind; run: string; mem: MemSummary }>;
  keptDirs: string[];
}

/** What every measurement records about its cache process and the central registry. */
export interface CacheRun {
  kind: CacheKind;
  run: string;
  /** Central registry traffic from just before the cache started until just after it stopped. */
  upstream: UpstreamSnapshot;
  /** upstream.bytes / image total size. */
  copies: number;
  mem: MemSummary;
  logErrors: LogErrors;
}

// Bounds a misbehaving cache so it cannot hang the run; generous next to expected times.
const COLD_TIMEOUT_MS = 120_000;

function target(ctx: Ctx, cache: CacheUnderTest): PullTarget {
  return { url: cache.url, repository: ctx.repository, reference: ctx.reference, image: ctx.image };
}

/** Starts a cache, runs body, then stops it and accounts for its upstream traffic and memory. */
async function withCache<T>(
  ctx: Ctx,
  kind: CacheKind,
  run: string,
  remoteurl: string,
  body: (cache: CacheUnderTest, mem: MemoryWatch) => Promise<T>,
): Promise<T & CacheRun> {
  const before = await snapshot(ctx.registry);
  const cache = await startCache(kind, remoteurl);
  const stop = ctx.cleanup.add(`${kind} (${run})`, () => cache.stop(ctx.cfg.keepDirs));
  if (ctx.cfg.keepDirs) ctx.keptDirs.push(`${kind} ${run}: ${cache.dir}`);
  const mem = new MemoryWatch(cache.pid).start();
  let value: T;
  let memSummary: MemSummary;
  let errors: LogErrors;
  try {
    value = await body(cache, mem);
  } finally {
    memSummary = await mem.finish(); // before stop: /proc/<pid> goes away with the process
    errors = await logErrors(cache);
    await stop();
  }
  await sleep(300); // the registry logs a cut-off transfer when its connection closes
  const upstream = diff(await snapshot(ctx.registry), before);
  ctx.memory.push({ kind, run, mem: memSummary });
  return { ...value, kind, run, upstream, copies: upstream.bytes / ctx.image.totalSize, mem: memSummary, logErrors: errors };
}

export interface ColdResult extends CacheRun {
  batch: BatchResult;
  settled: boolean;
}

/** (1) n concurrent pulls through a cold cache straight to the central registry. */
export function cold(ctx: Ctx, kind: CacheKind, n: number): Promise<ColdResult> {
  return withCache(ctx, kind, `cold x${n}`, ctx.registry.url, async (cache) => {
    const batch = await pullBatch(target(ctx, cache), n, COLD_TIMEOUT_MS);
    const s = await settle(ctx.registry);
    return { batch, settled: s.settled };
  });
}

export interface RolloutResult extends CacheRun {
  batch: BatchResult;
  seconds: number;
  floorSeconds: number;
  ratioToFloor: number;
  /** Bytes that crossed the throttled link towards the cache. */
  linkBytes: number;
  /** Seconds from the start until one image's worth of bytes had crossed the link: the WAN part. */
  linkSeconds: number;
  /** User + system CPU of the cache process during the roll-out. */
  cpuSeconds: number;
  timeoutMs: number;
}

/** (2) one image to cfg.nodes nodes at once; the cache reaches the registry through a throttled relay. */
export async function rollout(ctx: Ctx, kind: CacheKind): Promise<RolloutResult> {
  const { cfg, image } = ctx;
  const floorSeconds = image.totalSize / cfg.rateBps;
  // distribution may move about one copy per node (plus its own) over the link; allow that and a margin, no more.
  const timeoutMs = Math.round(Math.max(90, floorSeconds * (cfg.nodes + 2) * 1.5) * 1000);
  const relay = await startLink(ctx.registry.port, cfg.rateBps);
  const stopRelay = ctx.cleanup.add('relay', () => relay.stop());
  try {
    return await withCache(ctx, kind, `rollout x${cfg.nodes}`, relay.url, async (cache) => {
      // The whole process tree: with http.workers the serving is done by the primary's children.
      const pids = await treePids(cache.pid);
      const cpu0 = await treeCpuSeconds(pids);
      const start = Date.now();
      const batch = await pullBatch(target(ctx, cache), cfg.nodes, timeoutMs);
      const cpuSeconds = (await treeCpuSeconds(pids)) - cpu0;
      await settle(ctx.registry, { live: () => relay.bytesToClient(), maxMs: 15_000 });
      const seconds = batch.wallMs / 1000;
      const linkDone = relay.reached(image.totalSize);
      const linkSeconds = linkDone === undefined ? NaN : (linkDone - start) / 1000;
      return {
        batch,
        seconds,
        floorSeconds,
        ratioToFloor: seconds / floorSeconds,
        linkBytes: relay.bytesToClient(),
        linkSeconds,
        cpuSeconds,
        timeoutMs,
      };
    });
  } finally {
    await stopRelay();
  }
}
