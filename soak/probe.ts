/** @module soak/probe — resident memory and open descriptors of a process, read from /proc, and whether they grow over a run. */
import { readdir, readFile } from 'node:fs/promises';

export interface Sample {
  /** Seconds since the soak started. */
  readonly t: number;
  readonly pid: number;
  readonly rssBytes: number;
  readonly fds: number;
}

/** RSS and open descriptors of `pid`, or undefined when it is gone (a restart in progress). */
export async function sample(pid: number, t: number): Promise<Sample | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? NaN);
    const fds = (await readdir(`/proc/${pid}/fd`)).length;
    if (!Number.isFinite(kb)) return undefined;
    return { t, pid, rssBytes: kb * 1024, fds };
  } catch {
    return undefined;
  }
}

export interface Range {
  readonly min: number;
  readonly max: number;
}

export function range(values: readonly number[]): Range {
  return values.length === 0 ? { min: 0, max: 0 } : { min: Math.min(...values), max: Math.max(...values) };
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!;
}

export interface Growth {
  readonly growing: boolean;
  /** Median over the second quarter of the run, and over the last quarter. */
  readonly early: number;
  readonly late: number;
}

/**
 * Growth of a figure across the run, robust to GC sawtooth and load: the median of the last
 * quarter against the median of the second (the first is warm-up). It is growing when the late
 * median exceeds the early one by more than `factor` and `slack` together.
 */
export function growth(samples: readonly Sample[], pick: (s: Sample) => number, factor: number, slack: number): Growth {
  const n = samples.length;
  if (n < 8) return { growing: false, early: 0, late: 0 };
  const early = median(samples.slice(Math.floor(n / 4), Math.floor(n / 2)).map(pick));
  const late = median(samples.slice(Math.floor((3 * n) / 4)).map(pick));
  return { growing: late > early * factor + slack, early, late };
}
