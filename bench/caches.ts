/** @module bench/caches — berth and distribution's proxy mode started behind one interface, each on a fresh root */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startBerth } from '../test/fixtures/berth.js';
import { SEMI_SPACE_MIB } from '../src/workers/worker-flags.js';
import { configYaml } from '../test/fixtures/registry.js';
import { LOOPBACK, type Service, freePort, makeTempDir, removeDir, spawnService, startedOrThrow, waitForHttp } from '../test/fixtures/proc.js';

export type CacheKind = 'berth' | 'distribution';
export const KINDS: readonly CacheKind[] = ['berth', 'distribution'];

export interface CacheUnderTest {
  kind: CacheKind;
  /** http://127.0.0.1:PORT */
  url: string;
  /** The serving process itself (node for berth, the Go binary for distribution), for /proc. */
  pid: number;
  dir: string;
  logFile: string;
  /** Stops the process; removes its temp dir unless `keep`. */
  stop(keep?: boolean): Promise<void>;
}

export interface LogErrors {
  count: number;
  /** Warning-level lines (e.g. berth's "blob response cut short"). */
  warnings: number;
  /** A few distinct messages (errors and warnings), to show in the report. */
  samples: string[];
}

/** distribution 2.8 in proxy mode, configured like the test fixture's central registry (json log, so its traffic can be read back). */
function distributionYaml(root: string, port: number, remoteurl: string, tls?: TlsPair, redisAddr?: string): string {
  const q = JSON.stringify;
  // With Redis, distribution's one use of it: the blob-descriptor cache (its 3.x `addrs` list).
  const redis = redisAddr ? `\nredis:\n  addrs: [${q(redisAddr)}]` : '';
  const storageExtra = redisAddr ? ['  cache:', '    blobdescriptor: redis'] : [];
  return configYaml({ root, port, deleteEnabled: false, extra: `proxy:\n  remoteurl: ${q(remoteurl)}${redis}`, tls, storageExtra });
}

export interface TlsPair {
  certificate: string;
  key: string;
}

export interface StartOptions {
  /** The registry binary (distribution 3 is built by hand; default: Debian's docker-registry). */
  bin?: string;
  tls?: TlsPair;
  /** host:port of a Redis the cache uses (distribution: its blob-descriptor cache). */
  redisAddr?: string;
}

export async function startDistributionProxy(remoteurl: string, opts: StartOptions = {}): Promise<CacheUnderTest> {
  const dir = await makeTempDir('berth-bench-dist');
  const root = path.join(dir, 'data');
  await mkdir(root);
  const port = await freePort();
  const configFile = path.join(dir, 'config.yml');
  await writeFile(configFile, distributionYaml(root, port, remoteurl, opts.tls, opts.redisAddr));
  const logFile = path.join(dir, 'registry.log');
  let svc: Service;
  try {
    // distribution 3 exports traces to localhost:4318 unless told not to: nothing of the bench's listens there.
    svc = spawnService({ cmd: opts.bin ?? 'docker-registry', args: ['serve', configFile], logFile, env: { OTEL_TRACES_EXPORTER: 'none' } });
  } catch (e) {
    await removeDir(dir);
    throw e;
  }
  const url = `${opts.tls ? 'https' : 'http'}://${LOOPBACK}:${port}`;
  try {
    await startedOrThrow(svc, () => waitForHttp(`${url}/v2/`, 20_000, svc.exited), `${opts.bin ?? 'docker-registry'} (proxy)`);
  } catch (e) {
    await removeDir(dir);
    throw e;
  }
  return {
    kind: 'distribution',
    url,
    pid: svc.pid,
    dir,
    logFile,
    stop: async (keep = false) => {
      await svc.stop(10_000);
      if (!keep) await removeDir(dir);
    },
  };
}

/** berth runs with `prefetch: true` (the setting for roll-outs) unless BENCH_PREFETCH=0. */
export const berthPrefetch = (): boolean => process.env['BENCH_PREFETCH'] !== '0';

/** http.workers for berth in the cache scenarios: BENCH_BERTH_WORKERS (a count or auto), else one process. */
export const berthWorkers = (): number | 'auto' => {
  const raw = process.env['BENCH_BERTH_WORKERS'] ?? '1';
  return raw === 'auto' ? 'auto' : Number(raw);
};

export async function startBerthCache(
  remoteurl: string,
  opts: StartOptions & { config?: Record<string, unknown>; port?: number; workers?: number | 'auto'; root?: string; proxy?: Record<string, unknown> } = {},
): Promise<CacheUnderTest> {
  const http = { workers: opts.workers ?? berthWorkers(), ...(opts.tls ? { tls: opts.tls } : {}) };
  const config = { version: 0.1, ...opts.config, http };
  // e.g. BENCH_BERTH_NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2; flags node refuses there (--cpu-prof) go in BENCH_BERTH_NODE_ARGS.
  const nodeOptions = process.env['BENCH_BERTH_NODE_OPTIONS'];
  const extraArgs = (process.env['BENCH_BERTH_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const b = await startBerth({
    port: opts.port,
    ...(opts.root ? { root: opts.root } : {}),
    proxy: { remoteurl, prefetch: berthPrefetch(), ...opts.proxy },
    config,
    env: nodeOptions ? { NODE_OPTIONS: nodeOptions } : undefined,
    // As the `berth` command, `npm start` and the container image run it; workers get the flag from their primary.
    nodeArgs: [`--max-semi-space-size=${SEMI_SPACE_MIB}`, ...extraArgs],
  });
  return {
    kind: 'berth',
    url: b.url,
    pid: b.service.pid,
    dir: b.dir,
    logFile: b.service.logFile,
    stop: async (keep = false) => {
      await b.service.stop(15_000);
      if (!keep) await b.cleanup();
    },
  };
}

export function startCache(kind: CacheKind, remoteurl: string): Promise<CacheUnderTest> {
  return kind === 'berth' ? startBerthCache(remoteurl) : startDistributionProxy(remoteurl);
}

/** distribution warns about this at every start-up; it says nothing about the run. */
const STARTUP_NOISE = /does not implement Re\w*Remover/;

/** Error- and warning-level lines in a cache's log: pino numbers (>= 50) for berth, "level":"error" for distribution. */
export async function logErrors(cache: CacheUnderTest): Promise<LogErrors> {
  const text = await readFile(cache.logFile, 'utf8').catch(() => '');
  const samples = new Set<string>();
  let count = 0;
  let warnings = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const lvl = rec['level'];
    const isError = typeof lvl === 'number' ? lvl >= 50 : lvl === 'error' || lvl === 'fatal' || lvl === 'panic';
    const isWarning = (lvl === 40 || lvl === 'warn' || lvl === 'warning') && !STARTUP_NOISE.test(String(rec['msg']));
    if (!isError && !isWarning) continue;
    if (isError) count++;
    else warnings++;
    const err = rec['err'] as { message?: unknown } | undefined;
    const msg = [rec['msg'], err?.message ?? rec['err.message'] ?? rec['error']].filter(Boolean).join(': ');
    if (samples.size < 4) samples.add(`${isError ? 'error' : 'warn'}: ${normalize(String(msg))}`);
  }
  return { count, warnings, samples: [...samples] };
}

/** Collapses digests, ports and long hex so equal failures group together. */
export function normalize(msg: string): string {
  return msg
    .replace(/sha256:[0-9a-f]{64}/g, 'sha256:…')
    .replace(/[0-9a-f]{32,}/g, '…')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
    .replace(/\s+/g, ' ')
    .slice(0, 200);
}
