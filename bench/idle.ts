/** @module bench/idle — what a server costs doing nothing: time from spawn to its first answer on /v2/ with an empty store, and resident memory per process once idle */
import { availableParallelism } from 'node:os';
import { freePort, sleep } from '../test/fixtures/proc.js';
import { treePids } from './anchors.js';
import { type CacheUnderTest, startBerthCache, startDistributionProxy } from './caches.js';
import { readStatus } from './memory.js';

export type IdleServer = 'berth' | 'berth-workers' | 'distribution-2.8';
export const IDLE_SERVERS: readonly IdleServer[] = ['berth', 'berth-workers', 'distribution-2.8'];

export interface IdleResult {
  server: IdleServer;
  /** Spawn to the first answer on /v2/, per run (berth polled every 5 ms; distribution through its fixture, every 100 ms). */
  readyMs: number[];
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

async function startTimed(server: IdleServer, remoteurl: string): Promise<{ cache: CacheUnderTest; readyMs: number }> {
  const started = performance.now();
  if (server === 'distribution-2.8') {
    const cache = await startDistributionProxy(remoteurl);
    return { cache, readyMs: performance.now() - started };
  }
  const port = await freePort();
  // `auto` as installed (one process on two cores), and one worker per core as a site server with cores to spare runs.
  const workers = server === 'berth' ? 'auto' : Math.max(2, availableParallelism());
  let readyMs: number | undefined;
  const starting = startBerthCache(remoteurl, { port, workers });
  const polling = (async () => {
    while (readyMs === undefined) {
      if (await answers(`http://127.0.0.1:${port}/v2/`)) readyMs = performance.now() - started;
      else await sleep(5);
    }
  })();
  const cache = await starting;
  await polling;
  return { cache, readyMs: readyMs ?? performance.now() - started };
}

/** Starts each server `runs` times on an empty store, taking turns, and reads its ready time and idle memory. */
export async function idleCosts(remoteurl: string, runs: number, log: (m: string) => void): Promise<IdleResult[]> {
  const results = new Map<IdleServer, IdleResult>(IDLE_SERVERS.map((s) => [s, { server: s, readyMs: [], rssMiB: [] }]));
  for (let run = 1; run <= runs; run++) {
    for (const server of IDLE_SERVERS) {
      const r = results.get(server)!;
      if (r.skipped) continue;
      let started;
      try {
        started = await startTimed(server, remoteurl);
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
        r.rssMiB.push(rss);
        log(`idle ${server} (run ${run}/${runs}): ready in ${started.readyMs.toFixed(0)} ms, RSS ${rss.map((x) => x.toFixed(0)).join(' + ')} MiB`);
      } finally {
        await started.cache.stop();
      }
    }
  }
  return [...results.values()];
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** The idle table: median and range of ready time, idle RSS of the whole tree and per process. */
export function idleTable(results: readonly IdleResult[]): string {
  const rows = [['server', 'processes', 'ready ms (median, range)', 'idle RSS MiB, tree (median)', 'per process (median of each)']];
  for (const r of results) {
    if (r.skipped || r.readyMs.length === 0) {
      rows.push([r.server, '-', r.skipped ?? 'no run', '', '']);
      continue;
    }
    const totals = r.rssMiB.map((p) => p.reduce((a, b) => a + b, 0));
    const count = r.rssMiB[0]?.length ?? 0;
    const perProcess = Array.from({ length: count }, (_, i) => median(r.rssMiB.map((p) => p[i] ?? 0)).toFixed(0));
    rows.push([
      r.server,
      String(count),
      `${median(r.readyMs).toFixed(0)} (${Math.min(...r.readyMs).toFixed(0)}-${Math.max(...r.readyMs).toFixed(0)})`,
      median(totals).toFixed(0),
      perProcess.join(' + '),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n') + '\n';
}
