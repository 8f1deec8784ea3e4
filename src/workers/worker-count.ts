/** @module workers/worker-count — how many serving workers `http.workers: auto` starts: one per core from three cores up, within the container's CPU quota and memory limit. */

/** What the process may use, from its cgroup; undefined: no limit set. */
export interface CgroupLimits {
  /** CPUs the CFS quota allows (quota / period), e.g. 1.5. */
  readonly cpus?: number;
  /** Bytes the memory limit allows. */
  readonly memoryBytes?: number;
}

/**
 * Memory planned per serving worker (peak RSS measured at 130-240 MiB, 16 to 300 clients) and
 * for the primary: a pod limited to 1 GiB on a 32-core node must not start 32 workers.
 */
export const WORKER_MEMORY = 256 * 1024 * 1024;
export const PRIMARY_MEMORY = 96 * 1024 * 1024;

/**
 * At or below this many usable cores `auto` serves from one process: on two cores the clients and
 * the kernel keep the second core busy, and a second worker measured no faster (0.95 against 0.92
 * GB/s warm) for more CPU per GB and twice the idle memory (docs/performance.md).
 */
export const SINGLE_PROCESS_CORES = 2;

/** Why `auto` chose fewer workers than one per core. */
export type AutoLimit = 'few cores' | 'cpu quota' | 'memory limit';

/** The count for `auto`, and what held it below the cores (for the start-up log). */
export function autoWorkerCount(cores: number, limits: CgroupLimits): { count: number; limitedBy?: AutoLimit } {
  let count = Math.max(1, cores);
  let limitedBy: AutoLimit | undefined;
  if (limits.cpus !== undefined && Math.ceil(limits.cpus) < count) [count, limitedBy] = [Math.max(1, Math.ceil(limits.cpus)), 'cpu quota'];
  if (count <= SINGLE_PROCESS_CORES && count > 1) [count, limitedBy] = [1, limitedBy ?? 'few cores'];
  if (limits.memoryBytes !== undefined) {
    const fit = Math.max(1, Math.floor((limits.memoryBytes - PRIMARY_MEMORY) / WORKER_MEMORY));
    if (fit < count) [count, limitedBy] = [fit, 'memory limit'];
  }
  return limitedBy ? { count, limitedBy } : { count };
}

/** The start-up log line saying why `auto` chose `count`, or undefined when it is one per core. */
export function autoWorkerReason(count: number, cores: number, limits: CgroupLimits, limitedBy: AutoLimit | undefined): string | undefined {
  const usable = limits.cpus !== undefined && limits.cpus < cores ? `${limits.cpus} CPUs (the container's CPU quota)` : `${cores} cores`;
  if (limitedBy === 'few cores' || (limitedBy === 'cpu quota' && count === 1))
    return `http.workers: auto → 1 process: ${usable}; a second worker does not pay here (set http.workers to a count to choose)`;
  if (limitedBy) return `http.workers auto: ${count} of ${cores} cores, held by the container's ${limitedBy}`;
  return undefined;
}

/** Limits above this are "none" (cgroup v1 writes a huge number for unlimited). */
const UNLIMITED = 2 ** 60;

/**
 * Reads the CPU quota and memory limit of this process's cgroup, v2 or v1, from the files the
 * kernel exposes; `read` returns a file's text or undefined. Anything unreadable counts as no limit.
 */
export function readCgroupLimits(read: (path: string) => string | undefined): CgroupLimits {
  const lines = (read('/proc/self/cgroup') ?? '').split('\n');
  const pathOf = (controller: string) => {
    for (const line of lines) {
      const [, controllers = '', path = ''] = line.split(':');
      if (controller === '' ? line.startsWith('0::') : controllers.split(',').includes(controller)) return path;
    }
    return undefined;
  };
  // Inside a container's cgroup namespace the path is "/"; otherwise it names the group.
  const first = (paths: string[]) => {
    for (const p of paths) {
      const text = read(p)?.trim();
      if (text) return text;
    }
    return undefined;
  };
  const at = (base: string, path: string | undefined, file: string) => [...(path && path !== '/' ? [`${base}${path}/${file}`] : []), `${base}/${file}`];
  const limits: { cpus?: number; memoryBytes?: number } = {};
  const v2 = pathOf('');
  const cpuMax = first(at('/sys/fs/cgroup', v2, 'cpu.max'));
  if (cpuMax) {
    const [quota, period] = cpuMax.split(/\s+/);
    if (quota !== 'max' && Number(quota) > 0 && Number(period) > 0) limits.cpus = Number(quota) / Number(period);
  } else {
    const cpuPath = pathOf('cpu');
    const quota = Number(first(at('/sys/fs/cgroup/cpu', cpuPath, 'cpu.cfs_quota_us')));
    const period = Number(first(at('/sys/fs/cgroup/cpu', cpuPath, 'cpu.cfs_period_us')));
    if (quota > 0 && period > 0) limits.cpus = quota / period;
  }
  const memory = first(at('/sys/fs/cgroup', v2, 'memory.max')) ?? first(at('/sys/fs/cgroup/memory', pathOf('memory'), 'memory.limit_in_bytes'));
  if (memory && memory !== 'max' && Number(memory) > 0 && Number(memory) < UNLIMITED) limits.memoryBytes = Number(memory);
  return limits;
}
