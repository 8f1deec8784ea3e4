/** @module bench/report — the side-by-side table (plain text, aligned) and the notes that explain odd numbers */
import { type CacheKind, berthPrefetch } from './caches.js';
import type { BatchResult } from './pulls.js';
import type { BenchConfig, ColdResult, RolloutResult } from './scenarios.js';
import type { ServeResult } from './serving.js';
import type { MemSummary } from './memory.js';
import type { SiteResult } from './site.js';
import type { IdleResult } from './idle.js';

export interface BenchResults {
  cfg: BenchConfig;
  image: { totalSize: number; layers: number; layerSize: number; manifestDigest: string };
  cold: ColdResult[];
  rollout: RolloutResult[];
  site: SiteResult[];
  serve: ServeResult[];
  /** Ready time and idle memory with an empty store (scenario `idle`). */
  idle?: IdleResult[];
  memory: Array<{ kind: CacheKind; run: string; mem: MemSummary }>;
  startedAt: string;
  durationMs: number;
}

type Row = [string, string, string, string];

const MiB = 1024 * 1024;
const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const ratio = (a: number, b: number): string => (b > 0 && Number.isFinite(a) ? fmt(a / b) : '-');
const fails = (b: BatchResult): string => `${b.failed}/${b.clients}${b.timedOut ? ` (${b.timedOut} timed out)` : ''}`;

function pair<T extends { kind: CacheKind }>(list: T[], pick: (t: T) => boolean = () => true): [T | undefined, T | undefined] {
  return [list.find((t) => t.kind === 'berth' && pick(t)), list.find((t) => t.kind === 'distribution' && pick(t))];
}

function row(label: string, b: number | undefined, d: number | undefined, digits = 2, withRatio = true): Row {
  return [
    label,
    b === undefined ? '-' : fmt(b, digits),
    d === undefined ? '-' : fmt(d, digits),
    withRatio && b !== undefined && d !== undefined ? ratio(b, d) : '',
  ];
}

function text(label: string, b: string | undefined, d: string | undefined): Row {
  return [label, b ?? '-', d ?? '-', ''];
}

function align(rows: Row[]): string {
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}

export function table(r: BenchResults): string {
  const { cfg, image } = r;
  const rows: Row[] = [['measurement', 'berth', 'distribution', 'berth/dist']];
  for (const n of cfg.coldLevels) {
    const [b, d] = pair(r.cold, (c) => c.batch.clients === n);
    rows.push(row(`upstream bytes per image, ${n} cold pull${n > 1 ? 's' : ''}`, b?.copies, d?.copies));
    rows.push(text('  failed pulls', b && fails(b.batch), d && fails(d.batch)));
    rows.push(row('  wall time (s)', b && b.batch.wallMs / 1000, d && d.batch.wallMs / 1000, 1));
  }
  const [rb, rd] = pair(r.rollout);
  const floor = image.totalSize / cfg.rateBps;
  rows.push(row(`roll-out to ${cfg.nodes} nodes over ${fmt(cfg.rateBps / 1e6, 0)} MB/s (s)`, rb?.seconds, rd?.seconds, 1));
  rows.push(row(`  ratio to floor (${fmt(floor, 2)} s)`, rb?.ratioToFloor, rd?.ratioToFloor, 2, false));
  rows.push(row('  one image across the link after (s)', rb?.linkSeconds, rd?.linkSeconds, 1, false));
  rows.push(text('  failed pulls', rb && fails(rb.batch), rd && fails(rd.batch)));
  rows.push(row('  upstream bytes per image', rb?.copies, rd?.copies));
  rows.push(row('  CPU seconds of the cache', rb?.cpuSeconds, rd?.cpuSeconds));
  const peak = (k: CacheKind): { kib: number; run: string } | undefined =>
    r.memory
      .filter((m) => m.kind === k)
      .reduce<{ kib: number; run: string } | undefined>((best, m) => (!best || m.mem.hwmKiB > best.kib ? { kib: m.mem.hwmKiB, run: m.run } : best), undefined);
  const [pb, pd] = [peak('berth'), peak('distribution')];
  rows.push(row('peak RSS overall, max VmHWM (MiB)', pb && pb.kib / 1024, pd && pd.kib / 1024, 1));
  rows.push(text('  in run', pb?.run, pd?.run));

  const head =
    `berth bench: image ${fmt(image.totalSize / MiB, 1)} MiB (${image.layers} layers x ${fmt(image.layerSize / MiB, 1)} MiB,` +
    ` ${image.totalSize} bytes); link ${fmt(cfg.rateBps / 1e6, 1)} MB/s; ${cfg.nodes} nodes; ${cfg.warmClients} warm curl clients x ${cfg.warmRounds} pulls; berth prefetch ${berthPrefetch() ? 'on' : 'off'}`;
  return `${head}\n\n${align(rows)}\n`;
}

/** Failures, cache log errors, unsettled upstream traffic: what a reader needs to trust the numbers. */
export function notes(r: BenchResults): string[] {
  const out: string[] = [];
  const runs = [...r.cold, ...r.rollout];
  for (const run of runs) {
    for (const b of [run.batch]) {
      for (const [msg, n] of Object.entries(b.errors)) out.push(`${run.kind} ${run.run}: ${n} x ${msg}`);
    }
    const { count, warnings, samples } = run.logErrors;
    if (count + warnings > 0) {
      out.push(`${run.kind} ${run.run}: ${count} error and ${warnings} warning lines in its log, e.g. ${samples.join(' | ')}`);
    }
    if (run.upstream.errors > 0) out.push(`${run.kind} ${run.run}: central registry answered ${run.upstream.errors} requests with >= 400`);
    if ('settled' in run && !run.settled) out.push(`${run.kind} ${run.run}: upstream traffic still moving when measured`);
  }
  for (const s of r.site.filter((x) => !x.skipped)) {
    const label = `${s.kind} x${s.replicas} roll-out`;
    for (const [msg, n] of Object.entries(s.batch.errors)) out.push(`${label}: ${n} x ${msg}`);
    const { count, warnings, samples } = s.logErrors;
    if (count + warnings > 0) out.push(`${label}: ${count} error and ${warnings} warning lines in the replicas' logs, e.g. ${samples.join(' | ')}`);
    if (s.upstream.errors > 0) out.push(`${label}: central registry answered ${s.upstream.errors} requests with >= 400`);
  }
  for (const w of r.serve) {
    const label = `${w.name}${w.tls ? ' TLS' : ''} warm`;
    if (w.skipped) out.push(`${label}: ${w.skipped}`);
    if (w.failed > 0) out.push(`${label}: ${w.failed} transfers failed: ${w.errors.join(' | ')}`);
  }
  return out;
}

/** The site roll-out: one row per setup (cache and replica count). */
export function siteTable(r: BenchResults): string {
  const { cfg, image } = r;
  const nodes = r.site[0]?.nodes ?? cfg.siteNodes;
  const floor = image.totalSize / cfg.rateBps;
  const rows: string[][] = [['setup', 'registry bytes / image', 'wall s', 'x floor', 'failed', 'CPU s', 'peak RSS MiB']];
  const skipped: string[] = [];
  for (const s of r.site) {
    const name = `${s.kind} x${s.replicas}`;
    if (s.skipped) skipped.push(`${name}: ${s.skipped}`);
    else rows.push([name, fmt(s.copies), fmt(s.seconds, 1), fmt(s.ratioToFloor), fails(s.batch), fmt(s.cpuSeconds, 1), fmt(s.peakRssMiB, 0)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
  const body = rows.map((x) => x.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  const head =
    `roll-out of one ${fmt(image.totalSize / MiB, 1)} MiB image (${image.layers + 1} blobs) to ${nodes} nodes (curl processes, round-robin over the replicas),` +
    ` one ${fmt(cfg.rateBps / 1e6, 0)} MB/s link to the registry, floor ${fmt(floor, 2)} s; every setup on its own fresh redis-server:`;
  return (
    `${head}\n${[...body, ...skipped].join('\n')}\n` +
    '(CPU s: user + system of every replica during the roll-out; peak RSS: the highest VmHWM of any one replica)\n'
  );
}

const range = (xs: number[], digits: number): string => {
  const ok = xs.filter(Number.isFinite);
  if (ok.length === 0) return '-';
  const lo = Math.min(...ok);
  const hi = Math.max(...ok);
  return lo === hi || fmt(lo, digits) === fmt(hi, digits) ? fmt(lo, digits) : `${fmt(lo, digits)}-${fmt(hi, digits)}`;
};
const median = (xs: number[]): number => {
  const ok = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return ok.length === 0 ? NaN : ok[Math.floor((ok.length - 1) / 2)]!;
};

/** Warm serving, one row per server and transport: ranges over repeats, ratios of medians against distribution 3 (else 2.8). */
export function serveTable(results: ServeResult[]): string {
  const rows: string[][] = [
    ['server', 'transport', 'GB/s', 'CPU s/GB', 'req/s', 'CPU ms/req', 'peak RSS MiB', 'per process', 'time vs dist', 'CPU vs dist', 'runs'],
  ];
  for (const tls of [false, true]) {
    const of = (name: string): ServeResult[] => results.filter((x) => x.name === name && x.tls === tls && !x.skipped);
    const ref = of('distribution-3').length > 0 ? of('distribution-3') : of('distribution-2.8');
    const refG = median(ref.map((x) => x.gbps));
    const refC = median(ref.map((x) => x.cpuPerGB));
    for (const name of ['berth', 'berth-workers', 'distribution-2.8', 'distribution-3', 'nginx']) {
      const xs = of(name);
      if (xs.length === 0) continue;
      const g = median(xs.map((x) => x.gbps));
      rows.push([
        name,
        tls ? 'TLS' : 'plain',
        range(
          xs.map((x) => x.gbps),
          2,
        ),
        range(
          xs.map((x) => x.cpuPerGB),
          2,
        ),
        range(
          xs.map((x) => x.requestsPerS),
          0,
        ),
        range(
          xs.map((x) => x.cpuMsPerRequest),
          2,
        ),
        range(
          xs.map((x) => x.peakRssMiB),
          0,
        ),
        range(
          xs.map((x) => x.processPeakMiB),
          0,
        ),
        ratio(refG, g),
        ratio(median(xs.map((x) => x.cpuPerGB)), refC),
        String(xs.length),
      ]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return (
    `${rows.map((r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n')}\n` +
    '(peak RSS: the process tree, sampled while serving; per process: the highest VmHWM of any one process over its life, the cold fill of priming included;\n' +
    ' time vs dist: time to serve the same bytes relative to distribution 3, or 2.8 when 3 is absent; below 1 is faster)\n'
  );
}
