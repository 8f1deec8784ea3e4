/** @module bench/memory — a process's resident memory (/proc/<pid>/status: VmRSS sampled, VmHWM at the end) and CPU time */
import { readFile } from 'node:fs/promises';

export interface MemStatus {
  rssKiB: number;
  hwmKiB: number;
}

export async function readStatus(pid: number): Promise<MemStatus | null> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  if (text === null) return null;
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

/** User + system CPU seconds the process has used so far (/proc/<pid>/stat fields 14 and 15). */
export async function readCpuSeconds(pid: number): Promise<number | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (text === null) return null;
  // The command name (field 2) may contain spaces; count fields from the closing parenthesis.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]);
  return Number.isFinite(ticks) ? ticks / CLOCK_TICKS : null;
}

/** CPU seconds of several processes together (a server's process tree). */
export async function treeCpuSeconds(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const p of pids) total += (await readCpuSeconds(p)) ?? 0;
  return total;
}

// USER_HZ is 100 on every Linux build Node supports.
const CLOCK_TICKS = 100;

export interface MemSummary {
  /** Highest VmRSS sample over the whole life of the watch. */
  peakRssKiB: number;
  /** VmHWM read at the end: the kernel's own peak, which catches spikes between samples. */
  hwmKiB: number;
  samples: number;
}

/**
 * Samples VmRSS every intervalMs. A window (beginWindow/endWindow) isolates one phase, e.g.
 * warm serving, from the fill that came before it.
 */
export class MemoryWatch {
  private timer: NodeJS.Timeout | undefined;
  private peak = 0;
  private count = 0;
  private window: { peak: number; samples: number } | null = null;
  private reading = false;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 100,
  ) {}

  start(): this {
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  private async sample(): Promise<MemStatus | null> {
    if (this.reading) return null; // a slow read must not pile up behind a busy event loop
    this.reading = true;
    try {
      const s = await readStatus(this.pid);
      if (s) {
        this.count++;
        this.peak = Math.max(this.peak, s.rssKiB);
        if (this.window) {
          this.window.peak = Math.max(this.window.peak, s.rssKiB);
          this.window.samples++;
        }
      }
      return s;
    } finally {
      this.reading = false;
    }
  }

  beginWindow(): void {
    this.window = { peak: 0, samples: 0 };
  }

  /** Peak VmRSS sampled since beginWindow (one final sample included). */
  async endWindow(): Promise<{ peakRssKiB: number; samples: number }> {
    await this.sample();
    const w = this.window ?? { peak: 0, samples: 0 };
    this.window = null;
    return { peakRssKiB: w.peak, samples: w.samples };
  }

  /** Stops sampling and reads VmHWM; call while the process is still alive. */
  async finish(): Promise<MemSummary> {
    clearInterval(this.timer);
    const s = await readStatus(this.pid);
    if (s) this.peak = Math.max(this.peak, s.rssKiB);
    return { peakRssKiB: this.peak, hwmKiB: s?.hwmKiB ?? 0, samples: this.count };
  }
}
