/** @module bench/idle — what a server costs doing nothing: time (and, for berth, CPU) from spawn to its first answer on /v2/ with an empty store and with a store of 100k blobs, and resident memory per process once idle */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { freePort, makeTempDir, removeDir, sleep } from '../test/fixtures/proc.js';
import { seedStore } from '../test/fixtures/store-seed.js';
import { startAnchor, treePids } from './anchors.js';
import { type CacheUnderTest, startBerthCache, startDistributionProxy } from './caches.js';
import { readCpuSeconds, readStatus } from './memory.js';

export type IdleServer = 'berth' | 'berth-100k' | 'berth-workers' | 'distribution-2.8' | 'distribution-3';
export const IDLE_SERVERS: readonly IdleServer[] = ['berth', 'berth-100k', 'berth-workers', 'distribution-2.8', 'distribution-3'];

export interface IdleResult {
  server: IdleServer;
  /** Spawn to the first answer on /v2/, per run (berth polled every 5 ms; distribution through its fixture, every 100 ms). */
  readyMs: number[];
  /** berth: CPU time of the serving process when the start-up fixture saw it answer (a few ms after readyMs), per run. */
  cpuMs: number[];
  /** VmRSS of each process of the tree, per run, after IDLE_MS of idling. */
  rssMiB: number[][];
  skipped?: string;
}

/** How long a server idles after its first answer before its memory is read. */
const IDLE_MS = 3_000;

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url);
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

async function startTimed(server: IdleServer, remoteurl: string, seeded: string): Promise<{ cache: CacheUnderTest; readyMs: number; cpuMs?: number }> {
  const started = performance.now();
  if (server === 'distribution-2.8' || server === 'distribution-3') {
    const cache =
      server === 'distribution-3'
        ? { ...(await startAnchor(server, remoteurl, '', undefined)), kind: 'distribution' as const }
        : await startDistributionProxy(remoteurl);
    return { cache, readyMs: performance.now() - started };
  }
  const port = await freePort();
  // `auto` as installed (one process on two cores), and one worker per core as a site server with cores to spare runs.
  const workers = server === 'berth-workers' ? Math.max(2, availableParallelism()) : 'auto';
  let readyMs: number | undefined;
  const starting = startBerthCache(remoteurl, { port, workers, ...(server === 'berth-100k' ? { root: seeded } : {}) });
  const polling = (async () => {
    while (readyMs === undefined) {
      if (await answers(`http://127.0.0.1:${port}/v2/`)) readyMs = performance.now() - started;
      else await sleep(5);
    }
  })();
  const cache = await starting;
  const cpu = await readCpuSeconds(cache.pid);
  await polling;
  return { cache, readyMs: readyMs ?? performance.now() - started, ...(cpu === null ? {} : { cpuMs: cpu * 1000 }) };
}

/** Blobs in the store of `berth-100k` (BENCH_IDLE_BLOBS). */
function seededCount(): number {
  const n = Number(process.env['BENCH_IDLE_BLOBS'] ?? 100_000);
  return Number.isFinite(n) && n > 0 ? n : 100_000;
}

/** Starts each server `runs` times, taking turns, and reads its ready time and idle memory; `berth-100k` starts on one store of 100k blobs, written once. */
export async function idleCosts(remoteurl: string, runs: number, log: (m: string) => void): Promise<IdleResult[]> {
  const results = new Map<IdleServer, IdleResult>(IDLE_SERVERS.map((s) => [s, { server: s, readyMs: [], cpuMs: [], rssMiB: [] }]));
  const dir = await makeTempDir('berth-bench-idle-');
  const seeded = path.join(dir, 'data');
  try {
    const count = seededCount();
    const t = performance.now();
    // Files and rows written directly (test/fixtures/store-seed): a few seconds, against hours of pulls.
    await seedStore(seeded, { count });
    log(`idle: wrote a store of ${count} blobs in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    for (let run = 1; run <= runs; run++) {
      for (const server of IDLE_SERVERS) {
        const r = results.get(server)!;
        if (r.skipped) continue;
        let started;
        try {
          started = await startTimed(server, remoteurl, seeded);
        } catch (e) {
          r.skipped = (e as Error).message.split('\n')[0];
          log(`idle ${server}: ${r.skipped}`);
          continue;
        }
        try {
          await sleep(IDLE_MS);
          const rss: number[] = [];
          for (const pid of await treePids(started.cache.pid)) rss.push(((await readStatus(pid))?.rssKiB ?? 0) / 1024);
          r.readyMs.push(started.readyMs);
          if (started.cpuMs !== undefined) r.cpuMs.push(started.cpuMs);
          r.rssMiB.push(rss);
          const cpu = started.cpuMs === undefined ? '' : `, CPU ${started.cpuMs.toFixed(0)} ms`;
          log(`idle ${server} (run ${run}/${runs}): ready in ${started.readyMs.toFixed(0)} ms${cpu}, RSS ${rss.map((x) => x.toFixed(0)).join(' + ')} MiB`);
        } finally {
          await started.cache.stop();
        }
      }
    }
  } finally {
    await removeDir(dir);
  }
  return [...results.values()];
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const range = (xs: readonly number[]): string =>
  xs.length === 0 ? '-' : `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)})`;

/** The idle table: median and range of ready time and CPU to ready, idle RSS of the whole tree and per process. */
export function idleTable(results: readonly IdleResult[]): string {
  const rows = [['server', 'processes', 'ready ms (median, range)', 'CPU ms to ready', 'idle RSS MiB, tree (median)', 'per process (median of each)']];
  for (const r of results) {
    if (r.skipped || r.readyMs.length === 0) {
      rows.push([r.server, '-', r.skipped ?? 'no run', '', '', '']);
      continue;
    }
    const totals = r.rssMiB.map((p) => p.reduce((a, b) => a + b, 0));
    const count = r.rssMiB[0]?.length ?? 0;
    const perProcess = Array.from({ length: count }, (_, i) => median(r.rssMiB.map((p) => p[i] ?? 0)).toFixed(0));
    rows.push([r.server, String(count), range(r.readyMs), range(r.cpuMs), median(totals).toFixed(0), perProcess.join(' + ')]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n') + '\n';
}
