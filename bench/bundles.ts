/** @module bench/bundles — `npm run bench:bundles`: berth export and import of a large bundle against cp (and sync) of the same bytes on the same disk. */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
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
    process.stdout.write(`bundle of ${(total / MiB).toFixed(0)} MiB in ${LAYERS} layers, ${work}\n`);
    const cp = await timed('cp -r layout (baseline)', 'cp', ['-r', image.dir, path.join(work, 'copy')]);
    const imp = await timed('berth import (directory)', process.execPath, berth(['import', '--config', config, image.dir]));
    const expDir = await timed(
      'berth export --config (directory)',
      process.execPath,
      berth(['export', '--config', config, '-o', path.join(work, 'out'), 'bench.example/xing/big:v1']),
    );
    const expTar = await timed(
      'berth export --config (.tar)',
      process.execPath,
      berth(['export', '--config', config, '-o', path.join(work, 'out.tar'), 'bench.example/xing/big:v1']),
    );
    const impTar = await timed('berth import (.tar)', process.execPath, berth(['import', '--config', config2, path.join(work, 'out.tar')]));
    process.stdout.write('throughput relative to cp (aim >= 0.8):\n');
    for (const [what, s] of [
      ['import (directory)', imp],
      ['export (directory)', expDir],
      ['export (.tar)', expTar],
      ['import (.tar)', impTar],
    ] as const) {
      process.stdout.write(`  ${what.padEnd(20)} ${(cp / s).toFixed(2)}x\n`);
    }
  } finally {
    await image.remove();
    await removeDir(work);
  }
}

await main();
