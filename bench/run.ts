/** @module bench/run — `npm run bench`: berth and distribution's proxy mode side by side, one run, same image, same client */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildImage, pushImage } from '../test/fixtures/image.js';
import { startRegistry } from '../test/fixtures/registry.js';
import { type CacheKind, KINDS } from './caches.js';
import { Cleanup } from './cleanup.js';
import { type BenchResults, notes, table } from './report.js';
import { type BenchConfig, type Ctx, cold, rollout, warm } from './scenarios.js';

const MiB = 1024 * 1024;
const LAYERS = 4;
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

function readConfig(): BenchConfig {
  return {
    imageMiB: envNumber('BENCH_IMAGE_MIB', 64, false),
    layers: LAYERS,
    rateBps: envNumber('BENCH_RATE_MBPS', 20, false) * 1e6,
    nodes: envNumber('BENCH_NODES', 20, true),
    warmSeconds: envNumber('BENCH_WARM_SECONDS', 10, false),
    warmClients: 16,
    coldLevels: [1, 10, 30],
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
  const results: BenchResults & { scenarioErrors: string[] } = {
    cfg,
    image: { totalSize: image.totalSize, layers: cfg.layers, layerSize, manifestDigest: image.manifestDigest },
    cold: [], rollout: [], warm: [], memory: ctx.memory, scenarioErrors: [],
    startedAt: new Date(started).toISOString(), durationMs: 0,
  };

  // One failed scenario (say, a cache that would not start) must not cost the rest of the table.
  const attempt = async <T>(kind: CacheKind, name: string, fn: () => Promise<T>, into: T[], show: (t: T) => string): Promise<void> => {
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

  for (const n of cfg.coldLevels) {
    for (const kind of KINDS) {
      await attempt(kind, `${n} cold pull(s)`, () => cold(ctx, kind, n), results.cold,
        (r) => `${r.copies.toFixed(2)} copies, ${r.batch.failed}/${n} failed, ${(r.batch.wallMs / 1000).toFixed(1)} s`);
    }
  }
  for (const kind of KINDS) {
    await attempt(kind, `roll-out to ${cfg.nodes} nodes`, () => rollout(ctx, kind), results.rollout,
      (r) => `${r.seconds.toFixed(1)} s (${r.ratioToFloor.toFixed(2)} x floor), ${r.batch.failed} failed, ${r.copies.toFixed(2)} copies`);
  }
  for (const kind of KINDS) {
    await attempt(kind, `warm x${cfg.warmClients} for ${cfg.warmSeconds} s`, () => warm(ctx, kind), results.warm,
      (r) => `${r.mbps.toFixed(0)} MB/s, ${r.batch.ok} pulls, peak RSS ${(r.windowPeakRssKiB / 1024).toFixed(1)} MiB`);
  }

  results.durationMs = Date.now() - started;
  const out = path.join(os.tmpdir(), `berth-bench-${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);

  process.stdout.write(`\n${table(results)}`);
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

main(cleanup).then(
  (code) => finish(code),
  (e: unknown) => {
    log(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return finish(1);
  },
);
