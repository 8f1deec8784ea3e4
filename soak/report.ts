/** @module soak/report — the figures of a soak run, the verdict, and the text an operator reads. */
import { formatBytes } from '../src/cli/progress.js';
import type { FsckFigures } from './finish.js';
import { growth, type Growth, type Range, type Sample } from './probe.js';
import type { SoakOptions } from './harness.js';
import type { Failure, Tally } from './tally.js';
import type { Windows } from './windows.js';

export interface SoakReport {
  readonly ok: boolean;
  /** Why the run failed, one line per reason. */
  readonly problems: string[];
  readonly durationS: number;
  readonly pulls: number;
  readonly pullsByKind: Record<string, number>;
  readonly pushes: number;
  readonly failures: number;
  readonly failuresByCause: Record<string, number>;
  readonly firstFailures: Failure[];
  readonly excused: Record<string, number>;
  readonly staleTags: number;
  readonly restarts: number;
  readonly outages: number;
  readonly lifetimes: number;
  readonly rssMiB: { min: number; max: number; early: number; late: number };
  readonly fds: { min: number; max: number; early: number; late: number; idleStart: number | undefined; idleEnd: number | undefined };
  readonly upstreamBytes: number;
  readonly deliveredBytes: number;
  readonly workingSetBytes: number;
  /** Upstream bytes over bytes delivered to clients: the share of traffic the cache had to fetch. */
  readonly upstreamOverDelivered: number;
  /** Upstream bytes over the distinct image bytes: how often the working set was fetched (1 = once). */
  readonly upstreamOverWorkingSet: number;
  readonly queueDrained: boolean;
  readonly notReplicated: number;
  readonly fsck: FsckFigures;
  readonly cutLines: number;
  readonly errorLines: number;
  /** RSS and descriptors over time. */
  readonly samples: Sample[];
}

export interface SummaryInput {
  readonly durationMs: number;
  readonly opts: SoakOptions;
  readonly tally: Tally;
  readonly samples: Sample[];
  readonly idleStart: Sample | undefined;
  readonly idleEnd: Sample | undefined;
  readonly windows: Windows;
  readonly drained: boolean;
  readonly notReplicated: ReadonlyArray<{ repository: string; digest: string }>;
  readonly fsck: FsckFigures;
  readonly upstreamBytes: number;
  readonly workingSetBytes: number;
  readonly cutLines: number;
  readonly errorLines: number;
  readonly lifetimes: number;
  readonly rssRange: Range;
  readonly fdRange: Range;
  readonly maxsizeBytes: number;
}

/** Memory may wander with GC and load; growth beyond half again plus 48 MiB is not wandering. */
const RSS_FACTOR = 1.5;
const RSS_SLACK = 48 * 2 ** 20;
/** Descriptors follow open connections; a leak of one per pull soon passes this. */
const FD_FACTOR = 1.5;
const FD_SLACK = 24;
/** Idle descriptors at the end against those at the first start (sockets of the queue, logs). */
const FD_IDLE_SLACK = 12;

export function summarize(i: SummaryInput): SoakReport {
  const { tally } = i;
  const rss: Growth = growth(i.samples, (s) => s.rssBytes, RSS_FACTOR, RSS_SLACK);
  const fd: Growth = growth(i.samples, (s) => s.fds, FD_FACTOR, FD_SLACK);
  const problems: string[] = [];
  if (tally.failures.length > 0) problems.push(`${tally.failures.length} failed pulls or pushes`);
  if (tally.pulls === 0) problems.push('no pull completed');
  if (rss.growing) problems.push(`memory grew: median RSS ${mib(rss.early)} MiB early, ${mib(rss.late)} MiB late`);
  if (fd.growing) problems.push(`descriptors grew: median ${fd.early} early, ${fd.late} late`);
  if (i.idleStart && i.idleEnd && i.idleEnd.fds > i.idleStart.fds + FD_IDLE_SLACK)
    problems.push(`descriptors leaked: ${i.idleStart.fds} idle at start, ${i.idleEnd.fds} idle at the end`);
  if (!i.drained) problems.push('the write-behind queue did not drain');
  if (i.notReplicated.length > 0) problems.push(`${i.notReplicated.length} pushes never reached the central registry`);
  if (!i.fsck.ok) problems.push(`fsck: ${i.fsck.output.split('\n').at(-1)}`);
  const pullsByKind: Record<string, number> = {};
  for (const [k, n] of tally.ok) if (k !== 'push') pullsByKind[k] = n;
  return {
    ok: problems.length === 0,
    problems,
    durationS: Math.round(i.durationMs / 1000),
    pulls: tally.pulls,
    pullsByKind,
    pushes: tally.pushes,
    failures: tally.failures.length,
    failuresByCause: tally.failuresByCause(),
    firstFailures: tally.failures.slice(0, 20),
    excused: Object.fromEntries(tally.excused),
    staleTags: tally.staleTags,
    restarts: i.windows.count('restart'),
    outages: i.windows.count('outage'),
    lifetimes: i.lifetimes,
    rssMiB: { min: mib(i.rssRange.min), max: mib(i.rssRange.max), early: mib(rss.early), late: mib(rss.late) },
    fds: { min: i.fdRange.min, max: i.fdRange.max, early: fd.early, late: fd.late, idleStart: i.idleStart?.fds, idleEnd: i.idleEnd?.fds },
    upstreamBytes: i.upstreamBytes,
    deliveredBytes: tally.delivered,
    workingSetBytes: i.workingSetBytes,
    upstreamOverDelivered: tally.delivered > 0 ? round(i.upstreamBytes / tally.delivered) : 0,
    upstreamOverWorkingSet: round(i.upstreamBytes / i.workingSetBytes),
    queueDrained: i.drained,
    notReplicated: i.notReplicated.length,
    fsck: i.fsck,
    cutLines: i.cutLines,
    errorLines: i.errorLines,
    samples: i.samples,
  };
}

const mib = (bytes: number): number => Math.round(bytes / 2 ** 20);
const round = (x: number): number => Math.round(x * 1000) / 1000;

/** The report as text: the figures first, then RSS and descriptors over time, then failures. */
export function formatReport(r: SoakReport): string {
  const lines = [
    `soak ${r.ok ? 'PASSED' : 'FAILED'} after ${r.durationS} s`,
    `pulls: ${r.pulls} (${Object.entries(r.pullsByKind)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}); pushes: ${r.pushes}`,
    `failures: ${r.failures}${
      r.failures
        ? ` (${Object.entries(r.failuresByCause)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')})`
        : ''
    }`,
    `excused and retried (planned disruptions): ${
      Object.entries(r.excused)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || 'none'
    }`,
    `disruptions: ${r.outages} upstream outages, ${r.restarts} berth restarts (${r.lifetimes} berth processes)`,
    `RSS: ${r.rssMiB.min}-${r.rssMiB.max} MiB (median ${r.rssMiB.early} MiB in the 2nd quarter, ${r.rssMiB.late} MiB in the last)`,
    `open fds: ${r.fds.min}-${r.fds.max} (median ${r.fds.early} -> ${r.fds.late}); idle ${r.fds.idleStart ?? '?'} at start, ${r.fds.idleEnd ?? '?'} at the end`,
    `upstream: ${formatBytes(r.upstreamBytes)} for ${formatBytes(r.deliveredBytes)} delivered (ratio ${r.upstreamOverDelivered}); working set ${formatBytes(r.workingSetBytes)} (fetched ${r.upstreamOverWorkingSet} times)`,
    `stale tag answers beyond tagttl: ${r.staleTags}; responses cut (berth log): ${r.cutLines}; error lines: ${r.errorLines}`,
    `write-behind: queue ${r.queueDrained ? 'drained' : 'NOT drained'}, ${r.notReplicated} pushes missing at the central registry`,
    `fsck: ${r.fsck.output.split('\n').at(-1) ?? ''}`,
    '',
    'over time (t s: pid, RSS MiB, fds):',
    ...timeline(r.samples),
  ];
  if (r.problems.length > 0) lines.push('', 'problems:', ...r.problems.map((p) => `  ${p}`));
  if (r.firstFailures.length > 0)
    lines.push('', 'first failures:', ...r.firstFailures.map((f) => `  t=${Math.round(f.t / 1000)}s ${f.kind} ${f.cause}: ${f.detail}`));
  return lines.join('\n');
}

/** About twenty rows, whatever the length of the run. */
function timeline(samples: readonly Sample[]): string[] {
  const step = Math.max(1, Math.ceil(samples.length / 20));
  return samples
    .filter((_, k) => k % step === 0 || k === samples.length - 1)
    .map((s) => `  ${String(Math.round(s.t)).padStart(6)}: ${s.pid} ${mib(s.rssBytes)} ${s.fds}`);
}
