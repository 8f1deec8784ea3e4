/** @module bench/hostile — `npm run hostile`: cached-pull latency at a pull-through berth (quiet, password flood, slowloris hold), then issue 21's named cases with pass/fail each (loopback only, bounded, stops by itself). */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startRegistry } from '../test/fixtures/registry.js';
import { startBerth } from '../test/fixtures/berth.js';
import { makeTempDir, removeDir, run } from '../test/fixtures/proc.js';
import { makeManifest, pushManifest } from '../test/fixtures/oci-http.js';
import { basic } from '../test/fixtures/oci-call.js';
import { httpPull } from '../test/fixtures/http-pull.js';
import { fromAddress, holdHalfOpen, type HeldSocket } from '../test/fixtures/hostile.js';
import { runCases, type Outcome } from './hostile-kit.js';
import { hostileCases } from './hostile-cases.js';
import { diskCases } from './hostile-disk.js';

/** Cached pulls measured per phase, and the flood's and the hold's size: small enough to finish in about a minute. */
const PULLS = Number(process.env['HOSTILE_PULLS'] ?? 40);
const FLOODERS = 16;
const HOLD_ADDRESSES = ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'];
const HOLD_PER_ADDRESS = 300;
/** HOSTILE_ONLY=<text>: only the named cases whose name contains it, without the latency phases. */
const ONLY = process.env['HOSTILE_ONLY'];
const WATCHDOG_MS = 12 * 60_000;

const log = (msg: string): void => void process.stderr.write(`[hostile ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

interface Stats {
  median: number;
  p95: number;
  max: number;
}

function stats(ms: number[]): Stats {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { median: at(0.5), p95: at(0.95), max: s[s.length - 1]! };
}

async function pulls(url: string, auth: Record<string, string>): Promise<Stats> {
  const times: number[] = [];
  for (let i = 0; i < PULLS; i++) {
    const t = performance.now();
    await httpPull(url, 'hostile/app', 'v1', auth);
    times.push(performance.now() - t);
  }
  return stats(times);
}

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    log('watchdog: giving up');
    process.exit(2);
  }, WATCHDOG_MS);
  const work = await makeTempDir('berth-hostile-');
  const registry = await startRegistry();
  try {
    const image = makeManifest(randomBytes(500), [randomBytes(4 * 1024 * 1024), randomBytes(256 * 1024)]);
    await pushManifest(registry.url, 'hostile/app', image, 'v1');
    const htpasswd = path.join(work, 'htpasswd');
    const lines = [
      (await run('htpasswd', ['-nbB', '-C', '12', 'alice', 'alice-pw'])).stdout.trim(),
      (await run('htpasswd', ['-nbB', '-C', '10', 'bob', 'bob-pw'])).stdout.trim(),
    ];
    await writeFile(htpasswd, `${lines.join('\n')}\n`);
    if (ONLY === undefined) await latency(registry.url, htpasswd, image);
    const cases = [...hostileCases({ registryUrl: registry.url, work }), ...diskCases({ registryUrl: registry.url, work })].filter(
      (c) => ONLY === undefined || c.name.includes(ONLY),
    );
    log(`${cases.length} named cases`);
    const outcomes = await runCases(cases, log);
    process.stdout.write(table(outcomes));
    if (outcomes.some((o) => !o.pass)) process.exitCode = 1;
  } finally {
    await registry.stop();
    await removeDir(work);
    clearTimeout(watchdog);
  }
}

function table(outcomes: Outcome[]): string {
  const cell = (t: string) => t.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const rows = outcomes.map((o) => `| ${o.name} | ${o.pass ? 'pass' : '**FAIL**'} | ${cell(o.expected)} | ${cell(o.problems.join('; ') || '-')} |`);
  const passed = outcomes.filter((o) => o.pass).length;
  return ['', `${passed} of ${outcomes.length} cases pass`, '', '| case | result | expected | what broke |', '|---|---|---|---|', ...rows, ''].join('\n');
}

async function latency(registryUrl: string, htpasswd: string, image: ReturnType<typeof makeManifest>): Promise<void> {
  const berth = await startBerth({
    config: {
      version: 0.1,
      log: { accesslog: { disabled: true } },
      proxy: { remoteurl: registryUrl },
      auth: { htpasswd: { realm: 'edge', path: htpasswd } },
    },
  });
  try {
    const auth = basic('bob', 'bob-pw');
    await httpPull(berth.url, 'hostile/app', 'v1', auth);
    log(`cached; ${PULLS} pulls per phase (manifest + 3 blobs, ${Math.round(image.layers.reduce((n, l) => n + l.size, 0) / 1024)} KiB)`);
    const quiet = await pulls(berth.url, auth);

    let stop = false;
    const flood = { sent: 0, s401: 0, s429: 0 };
    const flooders = Promise.all(
      Array.from({ length: FLOODERS }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const r = await fromAddress(`${berth.url}/v2/`, { headers: basic('alice', `guess-${w}-${i}`), localAddress: '127.0.0.2' });
          flood.sent++;
          if (r.status === 401) flood.s401++;
          if (r.status === 429) flood.s429++;
        }
      }),
    );
    const during = await pulls(berth.url, auth);
    stop = true;
    await flooders;

    const held: HeldSocket[] = [];
    for (const a of HOLD_ADDRESSES) held.push(...(await holdHalfOpen(berth.port, HOLD_PER_ADDRESS, a)));
    const slow = await pulls(berth.url, auth);
    const refused = held.filter((h) => /^HTTP\/1\.1 (429|503)/.test(h.received)).length;
    const open = held.filter((h) => !h.closed).length;
    held.forEach((h) => h.socket.destroy());

    const row = (name: string, s: Stats) => `| ${name} | ${s.median.toFixed(1)} | ${s.p95.toFixed(1)} | ${s.max.toFixed(1)} |`;
    process.stdout.write(
      [
        '',
        '| phase | median ms | p95 ms | max ms |',
        '|---|---|---|---|',
        row('quiet', quiet),
        row(`password flood (${FLOODERS} parallel, ${flood.sent} sent: ${flood.s401} checked and refused 401, ${flood.s429} told to back off 429)`, during),
        row(
          `slowloris hold (${held.length} half-open sockets from ${HOLD_ADDRESSES.length} addresses: ${refused} refused, ${open} still open after the pulls)`,
          slow,
        ),
        '',
      ].join('\n'),
    );
  } finally {
    await berth.stop();
  }
}

main().catch((err: unknown) => {
  log(`failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
});
