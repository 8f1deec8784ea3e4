/** @module bench/run — `npm run bench`: berth beside distribution 2.8 and 3 and nginx, one run, same image, clients as separate curl processes */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildImage, pushImage } from '../test/fixtures/image.js';
import { startRegistry } from '../test/fixtures/registry.js';
import { type CacheKind, KINDS } from './caches.js';
import { Cleanup } from './cleanup.js';
import { type BenchResults, notes, serveTable, siteTable, table } from './report.js';
import { type SiteKind, siteRollout } from './site.js';
import { type BenchConfig, type Ctx, cold, rollout } from './scenarios.js';
import { type AnchorKind, makeCert } from './anchors.js';
import { serveWarm } from './serving.js';
import { idleCosts, idleTable } from './idle.js';
import { type FooterResult, type LazyWholeResult, footer, footerTable, lazyThenWhole, lazyWholeTable } from './lazy.js';
import { type LazyLayer, type LazyStartResult, lazyStart, lazyStartTable } from './lazy-start.js';
import { makeTempDir, removeDir } from '../test/fixtures/proc.js';

const ANCHORS: readonly AnchorKind[] = ['berth', 'berth-workers', 'distribution-2.8', 'distribution-3', 'nginx'];

function readAnchors(): AnchorKind[] {
  const raw = process.env['BENCH_SERVERS'] ?? '';
  if (raw === '') return [...ANCHORS];
  const parts = raw.split(',') as AnchorKind[];
  for (const p of parts) if (!ANCHORS.includes(p)) throw new Error(`BENCH_SERVERS=${raw}: expected a comma-separated list of ${ANCHORS.join(', ')}`);
  return parts;
}

function readCaches(): CacheKind[] {
  const raw = process.env['BENCH_CACHES'] ?? '';
  if (raw === '') return [...KINDS];
  const parts = raw.split(',') as CacheKind[];
  for (const p of parts) if (!KINDS.includes(p)) throw new Error(`BENCH_CACHES=${raw}: expected a comma-separated list of ${KINDS.join(', ')}`);
  return parts;
}

function readTransports(): Array<'plain' | 'tls'> {
  const raw = process.env['BENCH_TRANSPORTS'] ?? '';
  if (raw === '') return ['plain', 'tls'];
  const parts = raw.split(',');
  for (const p of parts) if (p !== 'plain' && p !== 'tls') throw new Error(`BENCH_TRANSPORTS=${raw}: expected plain, tls or both`);
  return parts as Array<'plain' | 'tls'>;
}

const MiB = 1024 * 1024;
/** The site roll-out's setups, in the order they run. */
const SITES: ReadonlyArray<[SiteKind, number]> = [
  ['berth', 1],
  ['berth', 3],
  ['distribution-3', 1],
  ['distribution-3', 3],
];
// The whole default run takes a few minutes; this only stops a run that has gone badly wrong.
const WATCHDOG_MS = 20 * 60_000;

function envNumber(name: string, dflt: number, integer: boolean): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`${name}=${raw}: expected a positive ${integer ? 'integer' : 'number'}`);
  }
  return n;
}

const SCENARIOS = ['idle', 'cold', 'footer', 'lazywhole', 'lazystart', 'parallel', 'rollout', 'warm', 'rollout60'] as const;

/** `--scenario a,b` (after `npm run bench --`) or BENCH_ONLY=a,b (`idle` alone takes about a minute); rollout60 runs only when asked for, it takes minutes. */
function readOnly(): BenchConfig['only'] {
  const at = process.argv.indexOf('--scenario');
  const raw = at >= 0 ? (process.argv[at + 1] ?? '') : (process.env['BENCH_ONLY'] ?? '');
  const source = at >= 0 ? '--scenario' : 'BENCH_ONLY';
  if (raw === '' && at < 0) return ['idle', 'cold', 'footer', 'lazywhole', 'lazystart', 'parallel', 'rollout', 'warm'];
  const parts = raw.split(',');
  for (const p of parts)
    if (!(SCENARIOS as readonly string[]).includes(p)) throw new Error(`${source} ${raw}: expected a comma-separated list of ${SCENARIOS.join(', ')}`);
  return parts as BenchConfig['only'];
}

function readConfig(): BenchConfig {
  return {
    imageMiB: envNumber('BENCH_IMAGE_MIB', 64, false),
    // Many small layers (say 64 x 1 MiB) make the warm rows measure per-request cost rather than the sendfile loop.
    layers: envNumber('BENCH_LAYERS', 4, true),
    rateBps: envNumber('BENCH_RATE_MBPS', 20, false) * 1e6,
    nodes: envNumber('BENCH_NODES', 20, true),
    siteNodes: envNumber('BENCH_SITE_NODES', 60, true),
    warmRounds: envNumber('BENCH_WARM_ROUNDS', 2, true),
    warmClients: envNumber('BENCH_WARM_CLIENTS', 16, true),
    repeats: envNumber('BENCH_REPEATS', 1, true),
    coldLevels: [1, 10, 30],
    only: readOnly(),
    keepDirs: process.env['BENCH_KEEP'] === '1',
  };
}

const log = (msg: string): void => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

async function main(cleanup: Cleanup): Promise<number> {
  const started = Date.now();
  const cfg = readConfig();
  // Layers a multiple of 512 bytes so the fixture's tar sizes come out exact.
  const layerSize = Math.max(2048, Math.round((cfg.imageMiB * MiB) / cfg.layers / 512) * 512);

  log('starting the central registry (docker-registry)');
  const registry = await startRegistry();
  cleanup.add('central registry', () => registry.stop());
  log(`building and pushing a ${cfg.layers} x ${(layerSize / MiB).toFixed(1)} MiB image`);
  const image = await buildImage({ layers: cfg.layers, layerSize, tag: 'v1' });
  cleanup.add('image layout', () => image.remove());
  const repository = 'bench/app';
  await pushImage(image, registry.url, `${repository}:v1`);

  const ctx: Ctx = { cfg, registry, image, repository, reference: 'v1', cleanup, log, memory: [], keptDirs: [] };
  const results: BenchResults & { scenarioErrors: string[]; footer: FooterResult[]; lazyWhole: LazyWholeResult[]; lazyStart: LazyStartResult[] } = {
    cfg,
    image: { totalSize: image.totalSize, layers: cfg.layers, layerSize, manifestDigest: image.manifestDigest },
    cold: [],
    footer: [],
    lazyWhole: [],
    lazyStart: [],
    rollout: [],
    site: [],
    serve: [],
    memory: ctx.memory,
    scenarioErrors: [],
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
  };

  // One failed scenario (say, a cache that would not start) must not cost the rest of the table.
  const attempt = async <T>(kind: string, name: string, fn: () => Promise<T>, into: T[], show: (t: T) => string): Promise<void> => {
    log(`${kind}: ${name} ...`);
    try {
      const r = await fn();
      into.push(r);
      log(`${kind}: ${name}: ${show(r)}`);
    } catch (e) {
      const msg = `${kind} ${name}: ${(e as Error).message.split('\n').slice(0, 6).join(' / ')}`;
      results.scenarioErrors.push(msg);
      log(`FAILED ${msg}`);
    }
  };

  const idle = cfg.only.includes('idle') ? await idleCosts(registry.url, envNumber('BENCH_IDLE_RUNS', 5, true), log) : [];
  for (const n of cfg.only.includes('cold') ? cfg.coldLevels : []) {
    for (const kind of readCaches()) {
      await attempt(
        kind,
        `${n} cold pull(s)`,
        () => cold(ctx, kind, n),
        results.cold,
        (r) => `${r.copies.toFixed(2)} copies, ${r.batch.failed}/${n} failed, ${(r.batch.wallMs / 1000).toFixed(1)} s`,
      );
    }
  }
  for (const kind of cfg.only.includes('footer') ? (['direct', ...readCaches()] as const) : []) {
    await attempt(
      kind,
      kind === 'direct' ? 'footer straight from the registry' : 'footer of a cold layer',
      () => footer(ctx, kind),
      results.footer,
      (r) => `${r.ms.toFixed(0)} ms`,
    );
  }
  for (const kind of cfg.only.includes('lazywhole') ? readCaches() : []) {
    await attempt(
      kind,
      'a lazy start then the whole layer',
      () => lazyThenWhole(ctx, kind),
      results.lazyWhole,
      (r) => `${(r.linkBytes / r.layerBytes).toFixed(3)} x the layer over the link, ${(r.ms / 1000).toFixed(1)} s`,
    );
  }
  const lazyScenarios = (['lazystart', 'parallel'] as const).filter((s) => cfg.only.includes(s));
  if (lazyScenarios.length > 0) {
    // One large layer of its own (BENCH_LAZY_MIB, 64 by default), as the lazily pulled layers of AI/ML images are.
    const lazySize = Math.round((envNumber('BENCH_LAZY_MIB', 64, false) * MiB) / 512) * 512;
    log(`building and pushing a 1 x ${(lazySize / MiB).toFixed(1)} MiB image for ${lazyScenarios.join(', ')}`);
    const big = await buildImage({ layers: 1, layerSize: lazySize, tag: 'v1' });
    cleanup.add('lazy image layout', () => big.remove());
    await pushImage(big, registry.url, 'bench/lazy:v1');
    const target: LazyLayer = { repository: 'bench/lazy', layer: big.layers[0]!, other: big.config };
    for (const scenario of lazyScenarios) {
      const berthKinds = ['berth', 'berth-budget', ...(scenario === 'lazystart' ? (['berth-running'] as const) : [])] as const;
      for (const kind of ['direct', ...readCaches().flatMap((k) => (k === 'berth' ? berthKinds : [k]))] as const) {
        await attempt(
          kind,
          scenario === 'lazystart' ? 'eStargz-like lazy start' : '8 parallel ranges',
          () => lazyStart(ctx, target, scenario, kind),
          results.lazyStart,
          (r) => `first byte ${r.firstByteMs.toFixed(0)} ms, all ${r.ms.toFixed(0)} ms, link ${(r.linkBytes / r.askedBytes).toFixed(2)} x asked`,
        );
      }
    }
  }
  for (const kind of cfg.only.includes('rollout') ? readCaches() : []) {
    await attempt(
      kind,
      `roll-out to ${cfg.nodes} nodes`,
      () => rollout(ctx, kind),
      results.rollout,
      (r) =>
        `${r.seconds.toFixed(1)} s (${r.ratioToFloor.toFixed(2)} x floor; link done after ${r.linkSeconds.toFixed(1)} s), ${r.batch.failed} failed, ${r.copies.toFixed(2)} copies, ${r.cpuSeconds.toFixed(2)} CPU s`,
    );
  }
  for (const [kind, replicas] of cfg.only.includes('rollout60') ? SITES : []) {
    const label = `${kind} x${replicas}: roll-out to ${cfg.siteNodes} nodes`;
    log(`${label} ...`);
    try {
      const r = await siteRollout(ctx, kind, replicas, cfg.siteNodes);
      results.site.push(r);
      log(
        r.skipped
          ? `${label}: ${r.skipped}`
          : `${label}: ${r.seconds.toFixed(1)} s (${r.ratioToFloor.toFixed(2)} x floor), ${r.copies.toFixed(2)} copies, ${r.batch.failed} failed, ${r.cpuSeconds.toFixed(1)} CPU s`,
      );
    } catch (e) {
      const msg = `${label}: ${(e as Error).message.split('\n').slice(0, 6).join(' / ')}`;
      results.scenarioErrors.push(msg);
      log(`FAILED ${msg}`);
    }
  }
  if (cfg.only.includes('warm')) {
    const certDir = await makeTempDir('berth-bench-tls');
    cleanup.add('certificate', () => removeDir(certDir));
    const tls = await makeCert(certDir);
    for (let rep = 1; rep <= cfg.repeats; rep++) {
      for (const t of readTransports().map((x) => (x === 'tls' ? tls : undefined))) {
        for (const name of readAnchors()) {
          const label = `${name}${t ? ' TLS' : ''} warm x${cfg.warmClients} (run ${rep}/${cfg.repeats})`;
          log(`${label} ...`);
          const r = await serveWarm(ctx, name, t);
          results.serve.push(r);
          log(
            r.skipped
              ? `${label}: ${r.skipped}`
              : `${label}: ${r.gbps.toFixed(2)} GB/s, ${r.cpuPerGB.toFixed(2)} CPU s/GB, ${r.requestsPerS.toFixed(0)} req/s at ${r.cpuMsPerRequest.toFixed(2)} CPU ms each, peak RSS ${r.peakRssMiB.toFixed(0)} MiB (${r.startRssMiB.toFixed(0)} at start, ${r.processPeakMiB.toFixed(0)} highest of one process), ${r.failed} failed`,
          );
        }
      }
    }
  }

  results.idle = idle;
  results.durationMs = Date.now() - started;
  const out = path.join(os.tmpdir(), `berth-bench-${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);

  if (idle.length > 0) process.stdout.write(`\nidle (ready: spawn to the first answer on /v2/; berth-100k: a store of 100k blobs):\n${idleTable(idle)}`);
  if (cfg.only.some((o) => o !== 'rollout60' && o !== 'idle')) process.stdout.write(`\n${table(results)}`);
  if (results.footer.length > 0) process.stdout.write(`\n${footerTable(results.footer, layerSize)}`);
  if (results.lazyWhole.length > 0) process.stdout.write(`\n${lazyWholeTable(results.lazyWhole)}`);
  for (const scenario of ['lazystart', 'parallel'] as const) {
    const t = lazyStartTable(results.lazyStart, scenario);
    if (t) process.stdout.write(`\n${t}`);
  }
  if (results.site.length > 0) process.stdout.write(`\n${siteTable(results)}`);
  if (results.serve.length > 0)
    process.stdout.write(`\nwarm serving, ${cfg.warmClients} curl processes x ${cfg.warmRounds} pulls of the image each:\n${serveTable(results.serve)}`);
  const n = [...results.scenarioErrors.map((e) => `scenario failed: ${e}`), ...notes(results)];
  if (n.length > 0) process.stdout.write(`\nnotes:\n${n.map((l) => `  - ${l}`).join('\n')}\n`);
  if (ctx.keptDirs.length > 0) process.stdout.write(`\nkept cache dirs:\n${ctx.keptDirs.map((d) => `  ${d}`).join('\n')}\n`);
  process.stdout.write(`\nresults JSON: ${out}\ntotal time: ${(results.durationMs / 1000).toFixed(0)} s\n`);
  return results.scenarioErrors.length > 0 ? 1 : 0;
}

const cleanup = new Cleanup();
let exiting = false;
const finish = async (code: number): Promise<never> => {
  if (!exiting) {
    exiting = true;
    await cleanup.runAll();
  }
  process.exit(code);
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping everything`);
    void finish(130);
  });
}
setTimeout(() => {
  log(`watchdog: still running after ${WATCHDOG_MS / 60_000} min, giving up`);
  void finish(1);
}, WATCHDOG_MS).unref();

const USAGE = `usage: npm run bench [-- --scenario ${SCENARIOS.join(',')}]
The default runs every scenario but rollout60. Settings are environment variables (BENCH_ONLY,
BENCH_IMAGE_MIB, BENCH_LAZY_MIB, BENCH_RATE_MBPS, ...): see docs/performance.md, "Running the benchmark".
`;
const args = process.argv.slice(2);
const unknown = args.filter((a, i) => !(a === '--scenario' || args[i - 1] === '--scenario'));
if (args.includes('--help') || args.includes('-h') || unknown.length > 0) {
  if (unknown.length > 0 && !args.includes('--help') && !args.includes('-h')) process.stderr.write(`unknown argument ${unknown.join(' ')}\n`);
  process.stderr.write(USAGE);
  process.exit(unknown.some((a) => a !== '--help' && a !== '-h') ? 2 : 0);
}

main(cleanup).then(
  (code) => finish(code),
  (e: unknown) => {
    log(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return finish(1);
  },
);
