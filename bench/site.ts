/** @module bench/site — roll-out of one image to many nodes through a site of 1 or 3 replicas on one Redis, berth beside distribution v3, over one throttled link */
import { LOOPBACK, freePort, sleep } from '../test/fixtures/proc.js';
import { startRedis } from '../test/fixtures/redis.js';
import { distribution3 } from './anchors.js';
import { startLink } from './link.js';
import { type CacheUnderTest, type LogErrors, logErrors, startBerthCache, startDistributionProxy } from './caches.js';
import { type MemSummary, MemoryWatch, readCpuSeconds } from './memory.js';
import { type BatchResult, pullBatch } from './pulls.js';
import type { Ctx } from './scenarios.js';
import { type UpstreamSnapshot, diff, settle, snapshot } from './upstream.js';

export type SiteKind = 'berth' | 'distribution-3';

export interface SiteResult {
  kind: SiteKind;
  replicas: number;
  nodes: number;
  /** Why the setup did not run (distribution v3 not built here). */
  skipped?: string;
  floorSeconds: number;
  seconds: number;
  ratioToFloor: number;
  /** Central registry body bytes, from the first replica's start until the last one stopped. */
  upstream: UpstreamSnapshot;
  /** upstream.bytes / image size. */
  copies: number;
  linkBytes: number;
  batch: BatchResult;
  /** User + system CPU of every replica during the roll-out (start-up excluded). */
  cpuSeconds: number;
  /** Highest VmHWM of any one replica. */
  peakRssMiB: number;
  logErrors: LogErrors;
}

/** The cluster secret the bench's berth replicas share; loopback only, never a real secret. */
const SECRET = 'berth-bench-site-secret-not-a-real-one';

async function members(port: number): Promise<number> {
  const { Redis } = await import('ioredis');
  const r = new Redis({ host: LOOPBACK, port, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    const keys = await r.keys('berth:*:members');
    const counts = await Promise.all(keys.map((k) => r.zcard(k)));
    return Math.max(0, ...counts);
  } catch {
    return 0;
  } finally {
    r.disconnect();
  }
}

/** Waits (bounded) until n berth replicas heartbeat into Redis, so the first pulls already see the whole site. */
async function allJoined(redisPort: number, n: number): Promise<void> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(200)) {
    if ((await members(redisPort)) >= n) return;
  }
  throw new Error(`${n} berth replicas did not all join Redis within 15 s`);
}

async function startReplicas(kind: SiteKind, n: number, remoteurl: string, redisAddr: string, bin: string | undefined): Promise<CacheUnderTest[]> {
  if (kind === 'distribution-3') return Promise.all(Array.from({ length: n }, () => startDistributionProxy(remoteurl, { bin, redisAddr })));
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const name = `bench-site-${ports[0]}`;
  // Exactly the keys docs/design.md §10 gives a replica.
  return Promise.all(
    ports.map((port) =>
      startBerthCache(remoteurl, {
        port,
        config: { redis: { addr: redisAddr }, cluster: { advertise: `http://${LOOPBACK}:${port}`, secret: SECRET, name } },
      }),
    ),
  );
}

function mergeLogErrors(all: LogErrors[]): LogErrors {
  return {
    count: all.reduce((s, e) => s + e.count, 0),
    warnings: all.reduce((s, e) => s + e.warnings, 0),
    samples: [...new Set(all.flatMap((e) => e.samples))].slice(0, 4),
  };
}

/**
 * `nodes` nodes pull the image at once, spread round-robin over `replicas` replicas that share
 * one fresh redis-server and one throttled link to the central registry.
 */
export async function siteRollout(ctx: Ctx, kind: SiteKind, replicas: number, nodes: number): Promise<SiteResult> {
  const { cfg, image } = ctx;
  const floorSeconds = image.totalSize / cfg.rateBps;
  const bin: { bin?: string; skipped?: string } = kind === 'distribution-3' ? await distribution3() : {};
  const empty: SiteResult = {
    kind,
    replicas,
    nodes,
    floorSeconds,
    seconds: NaN,
    ratioToFloor: NaN,
    upstream: { bytes: 0, blobGets: 0, blobBytes: 0, manifestRequests: 0, requests: 0, errors: 0 },
    copies: NaN,
    linkBytes: 0,
    batch: { clients: nodes, ok: 0, failed: 0, timedOut: 0, bytes: 0, wallMs: 0, slowestMs: 0, errors: {} },
    cpuSeconds: NaN,
    peakRssMiB: NaN,
    logErrors: { count: 0, warnings: 0, samples: [] },
  };
  if (bin.skipped) return { ...empty, skipped: bin.skipped };
  // A cache without coalescing moves about one copy per node over the link; allow that and a margin.
  const timeoutMs = Math.round(Math.max(90, floorSeconds * (nodes + 2) * 1.5) * 1000);

  const redis = await startRedis();
  const stopRedis = ctx.cleanup.add('redis-server (site)', () => redis.stop());
  const relay = await startLink(ctx.registry.port, cfg.rateBps);
  const stopRelay = ctx.cleanup.add('relay (site)', () => relay.stop());
  try {
    const before = await snapshot(ctx.registry);
    const caches = await startReplicas(kind, replicas, relay.url, redis.addr, bin.bin);
    const stops = caches.map((c, i) => ctx.cleanup.add(`${kind} replica ${i + 1}/${replicas}`, () => c.stop(cfg.keepDirs)));
    if (cfg.keepDirs) for (const c of caches) ctx.keptDirs.push(`${kind} site x${replicas}: ${c.dir}`);
    const watches = caches.map((c) => new MemoryWatch(c.pid).start());
    let mems: MemSummary[] = [];
    let errors: LogErrors[] = [];
    let batch: BatchResult;
    let cpuSeconds: number;
    try {
      if (kind === 'berth') await allJoined(redis.port, replicas);
      const cpu = async (): Promise<number> => (await Promise.all(caches.map((c) => readCpuSeconds(c.pid)))).reduce<number>((s, x) => s + (x ?? 0), 0);
      const cpu0 = await cpu();
      const targets = caches.map((c) => ({ url: c.url, repository: ctx.repository, reference: ctx.reference, image }));
      batch = await pullBatch(targets, nodes, timeoutMs);
      await settle(ctx.registry, { live: () => relay.bytesToClient(), maxMs: 15_000 });
      cpuSeconds = (await cpu()) - cpu0;
    } finally {
      mems = await Promise.all(watches.map((w) => w.finish()));
      errors = await Promise.all(caches.map((c) => logErrors(c)));
      await Promise.all(stops.map((s) => s()));
    }
    await sleep(300); // the registry logs a cut-off transfer when its connection closes
    const upstream = diff(await snapshot(ctx.registry), before);
    const seconds = batch.wallMs / 1000;
    return {
      ...empty,
      seconds,
      ratioToFloor: seconds / floorSeconds,
      upstream,
      copies: upstream.bytes / image.totalSize,
      linkBytes: relay.bytesToClient(),
      batch,
      cpuSeconds,
      peakRssMiB: Math.max(...mems.map((m) => m.hwmKiB)) / 1024,
      logErrors: mergeLogErrors(errors),
    };
  } finally {
    await stopRelay();
    await stopRedis();
  }
}
