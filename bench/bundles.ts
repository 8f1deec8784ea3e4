/** @module bench/bundles — `npm run bench:bundles`: berth export and import of a large bundle against cp (and sync) of the same bytes on the same disk. */
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
const total = Number(process.env['BENCH_BUNDLE_MIB'] ?? 1024) * MiB;
const LAYERS = 8;
const ROUNDS = Number(process.env['BENCH_BUNDLE_ROUNDS'] ?? 3);

async function timed(what: string, cmd: string, args: string[]): Promise<number> {
  await exec('sync');
  const t0 = process.hrtime.bigint();
  await exec(cmd, args, { maxBuffer: 16 * MiB });
  // cp leaves dirty pages behind; berth fsyncs every blob: both are measured to the disk.
  await exec('sync');
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(`  ${what.padEnd(34)} ${s.toFixed(2).padStart(7)} s  ${(total / MiB / s).toFixed(0).padStart(6)} MiB/s\n`);
  return s;
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
    for (let round = 1; round <= ROUNDS; round++) {
      process.stdout.write(`round ${round}\n`);
      await Promise.all(['copy', 'store', 'store2', 'out', 'out.tar'].map((d) => rm(path.join(work, d), { recursive: true, force: true })));
      const cp = await timed('cp -r layout (baseline)', 'cp', ['-r', image.dir, path.join(work, 'copy')]);
      const rows: Array<[string, number]> = [
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
      for (const [what, s] of rows) (ratios[what] ??= []).push(cp / s);
    }
    process.stdout.write(`throughput relative to cp, median of ${ROUNDS} rounds (aim >= 0.8):\n`);
    for (const [what, all] of Object.entries(ratios)) {
      const sorted = [...all].sort((x, y) => x - y);
      process.stdout.write(
        `  ${what.padEnd(20)} ${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)}x   (rounds: ${all.map((r) => r.toFixed(2)).join(', ')})\n`,
      );
    }
  } finally {
    await image.remove();
    await removeDir(work);
  }
}

await main();
