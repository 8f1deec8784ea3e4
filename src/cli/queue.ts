/** @module cli/queue — `berth queue [list|retry ID|drop ID]`: the write-behind replication queue of the store a config names. */
import type { Command } from 'commander';
import type { JobView, ReplicationQueue } from '../ports/replication-queue.js';
import type { ClusterConfig } from '../config/types.js';

export interface QueueIo {
  readonly env: Record<string, string | undefined>;
  readonly cwd: string;
  readonly now: () => number;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly setExit: (code: number) => void;
}

interface QueueOpts {
  config?: string;
}

/** Adds `berth queue` to the program. It works on push.db (and, for a site's replica, the site's queue in Redis) directly, with berth running or stopped. */
export function registerQueue(program: Command, io: QueueIo): void {
  const queue = program
    .command('queue')
    .description('write-behind replication queue: list pending and failed jobs (with age and last error), retry or drop one')
    .option('-c, --config <file>', 'config.yml naming the store (default: ./berth-data, or BERTH_CONFIG)')
    .option('--json', 'print the jobs as JSON')
    .action((opts: QueueOpts & { json?: boolean }) => withQueue(io, opts, (q) => list(io, q, Boolean(opts.json))));
  queue
    .command('retry')
    .description('make a pending or failed job due now, with a fresh attempt count')
    .argument('<id>', 'job id from berth queue')
    .option('-c, --config <file>', 'config.yml naming the store')
    .action((id: string, opts: QueueOpts) =>
      withQueue(io, { ...queue.opts<QueueOpts>(), ...opts }, async (q) => {
        if (!(await q?.retry(jobId(id)))) return missing(io, id);
        io.out(`job ${id} is due now; a running berth picks it up within seconds\n`);
      }),
    );
  queue
    .command('drop')
    .description('remove a job for good (what waits on it is released and may then fail upstream)')
    .argument('<id>', 'job id from berth queue')
    .option('-c, --config <file>', 'config.yml naming the store')
    .action((id: string, opts: QueueOpts) =>
      withQueue(io, { ...queue.opts<QueueOpts>(), ...opts }, async (q) => {
        const job = await q?.drop(jobId(id));
        if (!job) return missing(io, id);
        io.out(`dropped job ${id}: ${describe(job)} will not be replicated to ${job.upstream}\n`);
      }),
    );
}

/** What the commands use is imported here, when one runs: registering them must stay cheap (every `berth` run does it). */
async function withQueue(io: QueueIo, opts: QueueOpts, use: (queue: ReplicationQueue | undefined) => Promise<void>): Promise<void> {
  const [{ loadConfig }, { openExistingQueue }, { pino }, { SiteQueue }] = await Promise.all([
    import('../config/load.js'),
    import('../storage/push-db.js'),
    import('pino'),
    import('../cluster/site-queue.js'),
  ]);
  const { config } = loadConfig({ file: opts.config ?? io.env['BERTH_CONFIG'], env: io.env, cwd: io.cwd });
  const opened = openExistingQueue(config.storage.rootdirectory, io.now);
  const site = config.cluster ? await openSiteQueue(io, config.cluster) : undefined;
  try {
    const shared = site?.queue;
    await use(shared && opened ? new SiteQueue(shared, opened.queue, pino({ level: 'silent' })) : (shared ?? opened?.queue));
  } finally {
    site?.close();
    opened?.close();
  }
}

/** One of a site's replicas: the site's queue in Redis (this replica's own jobs from while Redis was away carry negative ids). */
async function openSiteQueue(io: QueueIo, cluster: ClusterConfig): Promise<{ queue: ReplicationQueue; close(): void }> {
  const [{ connectRedis }, { RedisReplicationQueue }, { pino }] = await Promise.all([
    import('../cluster/redis.js'),
    import('../cluster/redis-queue.js'),
    import('pino'),
  ]);
  const redis = connectRedis(cluster.redis, pino({ level: 'silent' }));
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), cluster.redis.connectMs);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  if (!ready)
    io.err(`berth: redis (${cluster.redis.addrs.map((a) => `${a.host}:${a.port}`).join(',')}) does not answer: showing this replica's own jobs only\n`);
  // Unready, its commands fail at once and the local jobs are listed alone, with the ids berth uses for them.
  return { queue: new RedisReplicationQueue(redis, cluster.name, io.now), close: () => redis.disconnect() };
}

function jobId(raw: string): number {
  const id = Number(raw);
  // Negative: a job this replica queued while the site's Redis was away.
  return Number.isSafeInteger(id) && id !== 0 ? id : 0;
}

function missing(io: QueueIo, id: string): void {
  io.err(`berth: no queued job ${id.slice(0, 40)}; berth queue lists them\n`);
  io.setExit(1);
}

async function list(io: QueueIo, queue: ReplicationQueue | undefined, json: boolean): Promise<void> {
  const jobs = (await queue?.list()) ?? [];
  const now = io.now();
  if (json) {
    // Owner and lease are the running berth's bookkeeping, not part of what the command reports.
    io.out(
      `${JSON.stringify(
        jobs.map(({ owner: _o, leaseUntil: _l, ...j }) => ({ ...j, ageMs: now - j.createdAt })),
        null,
        2,
      )}\n`,
    );
    return;
  }
  if (jobs.length === 0) {
    io.out('replication queue is empty: every write-behind push has reached its upstream\n');
    return;
  }
  const rows = [['ID', 'STATE', 'UPSTREAM', 'REPOSITORY', 'ITEM', 'AGE', 'ATTEMPTS', 'NEXT TRY', 'LAST ERROR']];
  for (const j of jobs) {
    const next =
      j.state === 'failed'
        ? 'on retry'
        : j.waitingFor.length > 0
          ? `after #${j.waitingFor.join(',#')}`
          : j.state === 'running'
            ? 'now'
            : j.nextAttemptAt > now
              ? `in ${age(j.nextAttemptAt - now)}`
              : j.transient
                ? 'when reachable'
                : 'due';
    rows.push([String(j.id), j.state, j.upstream, j.repository, describe(j), age(now - j.createdAt), String(j.attempts), next, j.lastError ?? '']);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  io.out(
    rows
      .map((r) =>
        r
          .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n',
  );
  const counts = { pending: 0, running: 0, failed: 0 };
  for (const j of jobs) counts[j.state]++;
  io.out(`${counts.pending} pending, ${counts.running} running, ${counts.failed} failed\n`);
}

function describe(j: Pick<JobView, 'kind' | 'digest' | 'tag'>): string {
  const short = j.digest.slice(0, j.digest.indexOf(':') + 13);
  return j.kind === 'tag' ? `tag ${j.tag} -> ${short}` : `${j.kind} ${short}`;
}

/** 3d4h, 5m12s, 40s: the largest two units. */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const units: Array<[string, number]> = [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ];
  const parts: string[] = [];
  let left = s;
  for (const [name, size] of units) {
    if (left >= size || (parts.length === 0 && size === 1)) {
      parts.push(`${Math.floor(left / size)}${name}`);
      left %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join('');
}
