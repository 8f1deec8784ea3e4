/** @module soak/run — `npm run soak -- --duration 30m`: one soak run on loopback, its report on stdout, exit 1 when it failed. */
import { writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { parseDuration, parseSize } from '../src/config/units.js';
import { DEFAULTS, defaultCycleMs, runSoak } from './harness.js';
import { formatReport } from './report.js';

const positive = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
};
const duration = (v: string): number => {
  try {
    return parseDuration(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

const program = new Command('soak')
  .description('mixed pulls, pushes, tag moves, upstream outages and berth restarts against a real registry and real berth processes')
  .option('--duration <time>', 'how long the traffic runs (90s, 30m, 4h)', duration, 90_000)
  .option('--clients <n>', 'raw HTTP pullers (a skopeo puller, a pusher and a tag mover run besides)', positive, DEFAULTS.clients)
  .option('--images <n>', 'images in the working set', positive, DEFAULTS.images)
  .option('--maxsize <size>', 'storage.maxsize of berth (smaller than the working set)', DEFAULTS.maxsize)
  .option('--tagttl <time>', 'tagttl of the upstreams', DEFAULTS.tagttl)
  .option('--cycle <time>', 'one outage, one SIGTERM and one SIGKILL restart per cycle (default: from the duration)', duration)
  .option('--seed <n>', 'seed of the traffic choices', positive, DEFAULTS.seed)
  .option('--json <file>', 'also write the full report (with every sample) as JSON')
  .option('--keep', 'keep the work directory and berth logs');

async function main(): Promise<number> {
  program.parse();
  const o = program.opts<{
    duration: number;
    clients: number;
    images: number;
    maxsize: string;
    tagttl: string;
    cycle?: number;
    seed: number;
    json?: string;
    keep?: boolean;
  }>();
  parseSize(o.maxsize);
  const log = (msg: string) => void process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
  // Bounded whatever happens: the end phase (queue drain, fsck) takes minutes at most.
  const watchdog = setTimeout(
    () => {
      log('the run did not finish 15 minutes after its duration; giving up (berth and the registry die with this process)');
      process.exit(3);
    },
    o.duration + 15 * 60_000,
  );
  watchdog.unref();
  const report = await runSoak({
    ...DEFAULTS,
    durationMs: o.duration,
    clients: o.clients,
    images: o.images,
    maxsize: o.maxsize,
    tagttl: o.tagttl,
    cycleMs: o.cycle ?? defaultCycleMs(o.duration),
    seed: o.seed,
    keep: o.keep ?? false,
    log,
  });
  process.stdout.write(`${formatReport(report)}\n`);
  if (o.json) await writeFile(o.json, `${JSON.stringify(report, null, 2)}\n`);
  return report.ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 2;
  },
);
