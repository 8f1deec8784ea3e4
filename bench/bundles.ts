/** @module bench/bundles — `npm run bench:bundles`: berth export and import of a large bundle against cp (and sync) of the same bytes on the same disk: throughput, and CPU seconds per GB (user + system of the command and its threads). */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { buildImage } from '../test/fixtures/image.js';
import { BERTH_BIN } from '../test/fixtures/berth.js';
import { makeTempDir, removeDir } from '../test/fixtures/proc.js';

const exec = promisify(execFile);
const MiB = 1 << 20;

if (process.argv.length > 2) {
  const help = process.argv.includes('--help') || process.argv.includes('-h');
  process.stderr.write(
    `${help ? '' : `unknown argument ${process.argv.slice(2).join(' ')}\n`}usage: npm run bench:bundles\nSettings: BENCH_BUNDLE_MIB (1024), BENCH_BUNDLE_ROUNDS (3); see docs/performance.md.\n`,
  );
  process.exit(help ? 0 : 2);
}
const total = Number(process.env['BENCH_BUNDLE_MIB'] ?? 1024) * MiB;
const LAYERS = 8;
const ROUNDS = Number(process.env['BENCH_BUNDLE_ROUNDS'] ?? 3);

/** Wall seconds (to the disk) and CPU seconds (user + system, as bash's `times` reports for its children) of one command. */
async function timed(what: string, cmd: string, args: string[]): Promise<{ s: number; cpu: number }> {
  await exec('sync');
  const t0 = process.hrtime.bigint();
  const { stdout } = await exec('bash', ['-c', '"$@" >/dev/null; times', '_', cmd, ...args], { maxBuffer: 16 * MiB });
  // cp leaves dirty pages behind; berth fsyncs every blob: both are measured to the disk.
  await exec('sync');
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  // The last line of `times`: user and system time of the children, as 0m1.234s.
  const cpu = stdout
    .trim()
    .split('\n')
    .at(-1)!
    .split(/\s+/)
    .map((t) => /^(\d+)m([\d.]+)s$/.exec(t)!)
    .reduce((n, m) => n + Number(m[1]) * 60 + Number(m[2]), 0);
  process.stdout.write(
    `  ${what.padEnd(34)} ${s.toFixed(2).padStart(7)} s  ${(total / MiB / s).toFixed(0).padStart(6)} MiB/s  ${perGB(cpu).toFixed(2).padStart(6)} CPU s/GB\n`,
  );
  return { s, cpu };
}

/** CPU seconds per 10^9 bytes moved. */
function perGB(cpu: number): number {
  return cpu / (total / 1e9);
}

function median(all: readonly number[]): number {
  return [...all].sort((x, y) => x - y)[Math.floor(all.length / 2)]!;
}

async function main(): Promise<void> {
  const work = await makeTempDir('berth-bench-bundles-');
  const image = await buildImage({ layers: LAYERS, layerSize: Math.floor(total / LAYERS), tag: 'v1' });
  try {
    // The layout buildImage wrote, named as berth export names images.
    const indexFile = path.join(image.dir, 'index.json');
    const index = JSON.parse(await readFile(indexFile, 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
    for (const m of index.manifests) m.annotations = { 'org.opencontainers.image.ref.name': 'bench.example/xing/big:v1' };
    await writeFile(indexFile, JSON.stringify(index));
    const config = path.join(work, 'config.yml');
    await writeFile(
      config,
      stringify({ version: 0.1, storage: { filesystem: { rootdirectory: path.join(work, 'store') } }, proxy: { remoteurl: 'http://127.0.0.1:9' } }),
    );
    const config2 = path.join(work, 'config2.yml');
    await writeFile(
      config2,
      stringify({ version: 0.1, storage: { filesystem: { rootdirectory: path.join(work, 'store2') } }, proxy: { remoteurl: 'http://127.0.0.1:9' } }),
    );
    const berth = (args: string[]) => [BERTH_BIN, ...args, '--quiet'];
    process.stdout.write(`bundle of ${(total / MiB).toFixed(0)} MiB in ${LAYERS} layers, ${ROUNDS} rounds, ${work}\n`);
    // Each round runs cp and the four berth operations back to back on fresh targets, so a change in
    // the disk's speed during the run weighs on both sides; the ratio reported is the median round's.
    const ratios: Record<string, number[]> = {};
    const cpus: Record<string, number[]> = {};
    for (let round = 1; round <= ROUNDS; round++) {
      process.stdout.write(`round ${round}\n`);
      await Promise.all(['copy', 'store', 'store2', 'out', 'out.tar'].map((d) => rm(path.join(work, d), { recursive: true, force: true })));
      const cp = await timed('cp -r layout (baseline)', 'cp', ['-r', image.dir, path.join(work, 'copy')]);
      const rows: Array<[string, { s: number; cpu: number }]> = [
        ['import (directory)', await timed('berth import (directory)', process.execPath, berth(['import', '--config', config, image.dir]))],
        [
          'export (directory)',
          await timed(
            'berth export --config (directory)',
            process.execPath,
            berth(['export', '--config', config, '-o', path.join(work, 'out'), 'bench.example/xing/big:v1']),
          ),
        ],
        [
          'export (.tar)',
          await timed(
            'berth export --config (.tar)',
            process.execPath,
            berth(['export', '--config', config, '-o', path.join(work, 'out.tar'), 'bench.example/xing/big:v1']),
          ),
        ],
        ['import (.tar)', await timed('berth import (.tar)', process.execPath, berth(['import', '--config', config2, path.join(work, 'out.tar')]))],
      ];
      (cpus['cp -r'] ??= []).push(perGB(cp.cpu));
      for (const [what, r] of rows) {
        (ratios[what] ??= []).push(cp.s / r.s);
        (cpus[what] ??= []).push(perGB(r.cpu));
      }
    }
    process.stdout.write(`median of ${ROUNDS} rounds: throughput relative to cp (aim >= 0.8), CPU seconds per GB moved\n`);
    process.stdout.write(`  ${'cp -r'.padEnd(20)} ${'1.00x'.padStart(6)}  ${median(cpus['cp -r']!).toFixed(2).padStart(6)} CPU s/GB\n`);
    for (const [what, all] of Object.entries(ratios)) {
      process.stdout.write(
        `  ${what.padEnd(20)} ${`${median(all).toFixed(2)}x`.padStart(6)}  ${median(cpus[what]!).toFixed(2).padStart(6)} CPU s/GB   (ratios: ${all.map((r) => r.toFixed(2)).join(', ')})\n`,
      );
    }
  } finally {
    await image.remove();
    await removeDir(work);
  }
}

await main();
