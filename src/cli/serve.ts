/** @module cli/serve — `berth serve`: load config, start the cache, stop cleanly on SIGTERM/SIGINT. */
import type { Cluster } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { pino } from 'pino';
import type { BerthConfig } from '../config/types.js';
import { prepareStore } from '../assembly/store-prep.js';
import type { App, AppDeps } from '../assembly/app.js';
import type { WorkerChannel, IpcPort } from '../workers/channel.js';
import { autoWorkerCount, autoWorkerReason, type AutoLimit, type CgroupLimits } from '../workers/worker-count.js';
import type { WanBudget } from '../upstream/budget.js';

export interface ServeIo {
  readonly signals: NodeJS.EventEmitter;
  /** Where uncaught exceptions and unhandled rejections are reported (the process). */
  readonly faults?: NodeJS.EventEmitter;
  /** Loads node:cluster, for http.workers above 1; without it berth serves from this process alone. */
  readonly cluster?: () => Promise<Cluster>;
  /** In a worker: its slot and the group size (from the primary), and its IPC endpoint. */
  readonly worker?: { readonly slot: number; readonly count: number; readonly port: IpcPort };
  /** Cores, for `http.workers: auto`. */
  readonly cores?: number;
  /** The container's CPU quota and memory limit, which `auto` keeps within. */
  readonly cgroup?: CgroupLimits;
  /** This process's Node.js flags and NODE_OPTIONS, from which the workers' flags are made. */
  readonly node?: { readonly execArgv: readonly string[]; readonly options: string | undefined };
  /** Called once this process listens. */
  readonly ready?: () => void;
  /** Start-up's own one-off work (bin/berth.js: the code cache), run with berth's once its first requests are over. */
  readonly startupWork?: () => void;
}

/** How many processes serve: `auto` is one per core from three cores up (one process below), within the cgroup's CPU quota and memory limit (`limitedBy` says what held it down). */
export function workerCount(
  config: BerthConfig,
  cores = availableParallelism(),
  limits: CgroupLimits = {},
): { count: number; limitedBy?: AutoLimit; cores: number } {
  return config.http.workers === 'auto' ? { ...autoWorkerCount(cores, limits), cores } : { count: config.http.workers, cores };
}

/** The log message of a fault no handler caught; the test fixtures fail any run that logs it. */
export const UNCAUGHT_MESSAGE = 'uncaught error (a bug in berth): the request it came from is lost; berth keeps serving';

/**
 * Lines go to stdout by a write(2) on the spot, as Node's own process.stdout does for files and
 * pipes on Linux. pino's default hands each one to the thread pool instead: under 16 clients that
 * round trip was about a tenth of the CPU a small blob's request cost (docs/performance.md).
 */
function createLogger(config: BerthConfig) {
  return pino({ level: config.log.level, base: { ...config.log.fields }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: true }));
}

/** An error from writing to the closed channel to the primary process. */
export function primaryGone(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  if (e?.code === 'ERR_IPC_CHANNEL_CLOSED' || e?.code === 'ERR_IPC_DISCONNECTED') return true;
  return e?.code === 'EPIPE' && typeof e.stack === 'string' && e.stack.includes('child_process');
}

/** Runs until a stop signal; resolves with the exit status. */
export async function serve(config: BerthConfig, warnings: readonly string[], io: ServeIo): Promise<number> {
  const base = createLogger(config);
  const logger = io.worker ? base.child({ worker: io.worker.slot }) : base;
  // Warnings are the primary's to print (each worker loads the same config).
  if (!io.worker) for (const w of warnings) logger.warn(w);
  // One request's fault must not end the process and every other client's transfer with it.
  const onFault = (err: unknown) => {
    // The primary was killed: a worker's message to it (a listen, a fill claim) fails with the
    // pipe closed. Not a bug: Node ends an orphaned worker on the disconnect that follows.
    if (io.worker && primaryGone(err)) logger.warn({ err: (err as Error).message }, 'the primary process is gone; this worker stops');
    else logger.fatal({ err }, UNCAUGHT_MESSAGE);
  };
  io.faults?.on('uncaughtException', onFault);
  io.faults?.on('unhandledRejection', onFault);
  const { count, limitedBy, cores } = workerCount(config, io.cores, io.cgroup);
  const reason = io.worker ? undefined : autoWorkerReason(count, cores, io.cgroup ?? {}, limitedBy);
  if (reason) logger.info({ workers: count, cores, ...io.cgroup }, reason);
  if (!io.worker && io.cluster && count > 1) {
    // Imported here, as the modes below: one process alone loads nothing of the worker group.
    const [{ runPrimary }, { workerExecArgv }, { budgetFor }] = await Promise.all([
      import('../workers/primary.js'),
      import('../workers/worker-flags.js'),
      import('../upstream/budget.js'),
    ]);
    await prepareStore(config, { logger, now: Date.now });
    const execArgv = workerExecArgv(io.node?.execArgv ?? [], io.node?.options);
    const budgets = new Map<string, WanBudget>();
    for (const u of config.upstreams) {
      const budget = budgetFor(u, Date.now);
      if (budget) budgets.set(u.name, budget);
    }
    return runPrimary({ cluster: await io.cluster(), count, logger, signals: io.signals, execArgv, budgets });
  }
  const channel = io.worker ? new (await import('../workers/channel.js')).WorkerChannel(io.worker.port, io.worker.slot, io.worker.count) : undefined;
  const lead = !channel || channel.lead;
  const app = await createMode(config, { logger, now: Date.now }, channel);
  let address;
  try {
    address = await app.listen();
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'cannot listen');
    await app.close(0);
    return 1;
  }
  logger[lead ? 'info' : 'debug'](
    {
      address: `${address.address}:${address.port}`,
      ...(channel ? { workers: channel.count } : {}),
      tls: Boolean(config.http.tls),
      ...(config.http.listeners.length > 0 ? { listeners: config.http.listeners.map((l) => `${l.host}:${l.port}${l.tls ? ' (TLS)' : ''}`) } : {}),
      root: config.storage.rootdirectory,
      upstreams: config.upstreams.map((u) => ({ name: u.name, remoteurl: u.remoteurl })),
    },
    'berth listening',
  );
  io.ready?.();
  // After listening: a loop back to this berth is only visible once it answers. Not put off
  // further: the checks load the upstream client's code and open the connections the first
  // requests then reuse (a just-started berth's lazy start took 1.50-1.66x direct with them here,
  // 1.78-1.89x after the first answer, 1.69-1.82x after a quiet second; docs/performance.md).
  // Not awaited: serving must not wait for a slow upstream; a failed check is only reported.
  app.checkUpstreams().catch((err: Error) => logger.warn({ err: err.message }, 'could not check the upstreams'));
  // Once the first requests are over (util/after-quiet): the code cache, then one full collection
  // with malloc_trim. That gives back what start-up left behind, including about 10 MiB a
  // background V8 compile of start-up code kept resident in glibc's heap in half of the starts
  // (docs/performance.md).
  if (io.startupWork) app.afterQuiet(io.startupWork);
  app.afterQuiet(() => app.settle());
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping: no new connections, finishing transfers in flight');
      resolve();
    };
    io.signals.once('SIGTERM', () => stop('SIGTERM'));
    io.signals.once('SIGINT', () => stop('SIGINT'));
    // Certificates and htpasswd are re-read in place; open connections stay up.
    io.signals.on('SIGHUP', () => app.reload('SIGHUP'));
  });
  await app.close();
  logger.info('stopped');
  return 0;
}

/** The mode this process serves in: a serving worker, one of a site's replicas, or one process alone. */
async function createMode(config: BerthConfig, deps: AppDeps, channel: WorkerChannel | undefined): Promise<App> {
  // Imported here: the primary of several workers serves nothing and does without the whole assembly.
  if (channel) return (await import('../assembly/worker.js')).createWorker(config, deps, channel);
  if (config.cluster) return (await import('../assembly/site-replica.js')).createReplica(config, config.cluster, deps);
  return (await import('../assembly/single.js')).createSingle(config, deps);
}
