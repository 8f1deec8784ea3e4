/** @module bench/serving — warm serving side by side: throughput, CPU seconds per GB and peak RSS of each server, plain and TLS */
import path from 'node:path';
import { sleep } from '../test/fixtures/proc.js';
import { type AnchorKind, type ServerUnderTest, startAnchor, treePids } from './anchors.js';
import type { TlsPair } from './caches.js';
import { blobTransfers, curl, nodePull, sum } from './curl.js';
import { readStatus, treeCpuSeconds } from './memory.js';
import type { Ctx } from './scenarios.js';
import { settle } from './upstream.js';

export interface ServeResult {
  name: AnchorKind;
  tls: boolean;
  /** Why it did not run (not installed, env var unset, failed to start). */
  skipped?: string;
  clients: number;
  bytes: number;
  seconds: number;
  failed: number;
  errors: string[];
  /** Decimal GB (1e9) per second. */
  gbps: number;
  /** User + system CPU of the whole server process tree per GB served. */
  cpuPerGB: number;
  /** Blob requests answered per second, and the CPU each cost (ms): per-request cost shows with small layers. */
  requestsPerS: number;
  cpuMsPerRequest: number;
  /** Highest sampled VmRSS summed over the process tree, in MiB. */
  peakRssMiB: number;
  /** VmRSS when the warm window began (after priming), in MiB. */
  startRssMiB: number;
  /** The highest VmHWM of any one process of the tree: its own peak over its whole life, priming (a cold fill) included. */
  processPeakMiB: number;
}

async function maxHwmKiB(pids: number[]): Promise<number> {
  let max = 0;
  for (const p of pids) max = Math.max(max, (await readStatus(p))?.hwmKiB ?? 0);
  return max;
}

async function treeRssKiB(pids: number[]): Promise<number> {
  let total = 0;
  for (const p of pids) total += (await readStatus(p))?.rssKiB ?? 0;
  return total;
}

/** Pulls once (twice for distribution, which stores in the background) so everything is local. */
async function prime(ctx: Ctx, s: ServerUnderTest, cacert: string | undefined): Promise<void> {
  if (!s.proxy) return;
  for (let i = 0; i < 2; i++) {
    const r = await nodePull({ url: s.url, cacert }, ctx.repository, ctx.reference, ctx.image, 120);
    if (r.failed > 0) throw new Error(`priming pull failed: ${r.errors.join('; ')}`);
    await settle(ctx.registry);
  }
}

/**
 * cfg.warmClients curl processes, each fetching every blob of the image cfg.warmRounds times over
 * one kept-alive connection; CPU is read from /proc before and after, RSS sampled every 100 ms.
 */
export async function serveWarm(ctx: Ctx, name: AnchorKind, tls: TlsPair | undefined): Promise<ServeResult> {
  const { cfg } = ctx;
  const base: ServeResult = {
    name,
    tls: !!tls,
    clients: cfg.warmClients,
    bytes: 0,
    seconds: 0,
    failed: 0,
    errors: [],
    gbps: NaN,
    cpuPerGB: NaN,
    requestsPerS: NaN,
    cpuMsPerRequest: NaN,
    peakRssMiB: NaN,
    startRssMiB: NaN,
    processPeakMiB: NaN,
  };
  let s: ServerUnderTest;
  try {
    s = await startAnchor(name, ctx.registry.url, path.join(ctx.image.dir, 'blobs', 'sha256'), tls);
  } catch (e) {
    return { ...base, skipped: (e as Error).message.split('\n')[0] };
  }
  const stop = ctx.cleanup.add(`${name} (warm)`, () => s.stop(ctx.cfg.keepDirs));
  try {
    const cacert = tls?.certificate;
    await prime(ctx, s, cacert);
    await sleep(200);
    const pids = await treePids(s.pid);
    const startRss = await treeRssKiB(pids);
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await treeRssKiB(pids));
        await sleep(100);
      }
    })();
    const transfers = Array.from({ length: cfg.warmRounds }, () => blobTransfers(ctx.repository, ctx.image)).flat();
    const cpu0 = await treeCpuSeconds(pids);
    const t0 = process.hrtime.bigint();
    const results = await Promise.all(Array.from({ length: cfg.warmClients }, () => curl({ url: s.url, cacert }, transfers, { timeoutS: 600 })));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = (await treeCpuSeconds(pids)) - cpu0;
    const processPeak = await maxHwmKiB(pids);
    sampling = false;
    await sampler;
    const total = sum(results);
    return {
      ...base,
      bytes: total.bytes,
      seconds,
      failed: total.failed,
      errors: total.errors,
      gbps: total.bytes / 1e9 / seconds,
      cpuPerGB: total.bytes > 0 ? cpu / (total.bytes / 1e9) : NaN,
      requestsPerS: total.transfers / seconds,
      cpuMsPerRequest: total.transfers > 0 ? (cpu * 1000) / total.transfers : NaN,
      peakRssMiB: peak / 1024,
      startRssMiB: startRss / 1024,
      processPeakMiB: processPeak / 1024,
    };
  } catch (e) {
    return { ...base, skipped: `failed: ${(e as Error).message.split('\n')[0]}` };
  } finally {
    await stop();
  }
}
