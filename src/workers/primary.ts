/** @module workers/primary — the primary of `http.workers` above 1: starts the workers, keeps the fill table, relays gathers, replaces the dead, drains on stop. */
import type { Cluster, Worker } from 'node:cluster';
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { LocalUploadBound } from '../storage/upload-bound.js';
import type { ByteBudget } from '../upstream/budget.js';
import { FillTable, type FillNotice } from './fill-table.js';
import { RangeTable, type RangeNotice } from './range-table.js';
import { COUNT_ENV, SLOT_ENV, isToPrimary, type Gathered, type ToPrimary, type ToWorker } from './worker-protocol.js';

export interface PrimaryDeps {
  readonly cluster: Cluster;
  readonly count: number;
  readonly logger: Logger;
  readonly signals: NodeJS.EventEmitter;
  /** Each upstream's WAN budget by name (those with `ratelimit` or `backgroundwindow`), shared by every worker. */
  readonly budgets: ReadonlyMap<string, ByteBudget>;
  /** Node.js flags for every worker (see worker-flags). */
  readonly execArgv: readonly string[];
}

/** A gather waits this long for each worker; a worker that does not answer is left out. */
const GATHER_MS = 3_000;
/** A tag check claimed and never released (its worker died mid-check) lapses after this long. */
const TAG_CHECK_MS = 5_000;
/** A dead filler's temp file is removed this long after its followers were told (they have it open by then). */
const ORPHAN_MS = 10_000;

interface Member {
  readonly slot: number;
  readonly worker: Worker;
  listening: boolean;
}

/**
 * Runs until a stop signal and every worker has drained; resolves with the exit status. A
 * worker that dies after it started serving is replaced in its slot (slot 0 holds the singleton
 * duties and the admin state); one that dies before it ever listened stops the group (a
 * configuration or address problem would only repeat).
 */
export async function runPrimary(deps: PrimaryDeps): Promise<number> {
  const { cluster, count, logger } = deps;
  cluster.setupPrimary({ execArgv: [...deps.execArgv] });
  const table = new FillTable();
  const ranges = new RangeTable();
  const tagChecks = new Map<string, number>();
  const uploads = new LocalUploadBound();
  const claimTag = (key: string) => {
    const now = Date.now();
    if ((tagChecks.get(key) ?? 0) > now) return false;
    if (tagChecks.size > 1024) for (const [k, until] of tagChecks) if (until <= now) tagChecks.delete(k);
    tagChecks.set(key, now + TAG_CHECK_MS);
    return true;
  };
  const members = new Map<number, Member>();
  const collecting = new Map<number, { answers: unknown[]; waiting: number; done: () => void }>();
  let nextCollect = 1;
  let adminPort: number | undefined;
  let stopping = false;
  let allListening = false;
  let status = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));

  const send = (m: Member | undefined, msg: ToWorker) => {
    if (m?.worker.isConnected()) m.worker.send(msg, undefined, () => undefined);
  };
  const notify = (notices: FillNotice[]) => {
    for (const n of notices) send(members.get(n.worker), { berth: 'fill', kind: n.kind, digest: n.digest, size: n.size });
  };
  const notifyRanges = (notices: RangeNotice[]) => {
    for (const n of notices) send(members.get(n.worker), { berth: 'range', flight: n.flight, ok: n.ok });
  };

  const gather = (what: Gathered): Promise<unknown[]> => {
    const targets = [...members.values()].filter((m) => m.listening && m.worker.isConnected());
    const id = nextCollect++;
    return new Promise((resolve) => {
      const entry = { answers: [] as unknown[], waiting: targets.length, done: () => undefined as void };
      const timer = setTimeout(() => entry.done(), GATHER_MS);
      entry.done = () => {
        clearTimeout(timer);
        collecting.delete(id);
        resolve(entry.answers);
      };
      collecting.set(id, entry);
      if (targets.length === 0) entry.done();
      for (const m of targets) send(m, { berth: 'collect', id, what });
    });
  };

  const receive = async (m: Member, msg: ToPrimary) => {
    const id = m.worker.id;
    switch (msg.berth) {
      case 'call': {
        const value =
          msg.op === 'claim'
            ? table.claim(id, msg.digest, msg.tempPath)
            : msg.op === 'filling'
              ? table.filling(msg.digest)
              : msg.op === 'claimTag'
                ? claimTag(msg.key)
                : msg.op === 'rangeClaim'
                  ? ranges.claim(id, msg.digest, msg.start, msg.end)
                  : msg.op === 'rangeUnder'
                    ? ranges.under(id, msg.digest, msg.start, msg.end)
                    : msg.op === 'uploadOpen'
                      ? uploads.openNow(msg.client, msg.upload)
                      : msg.op === 'budget'
                        ? await (deps.budgets.get(msg.upstream)?.take(msg.n, msg.background) ?? Promise.resolve()).then(() => true)
                        : await gather(msg.what);
        send(m, { berth: 'reply', id: msg.id, value });
        return;
      }
      case 'collected': {
        const c = collecting.get(msg.id);
        if (!c) return;
        c.answers.push(msg.value);
        if (--c.waiting === 0) c.done();
        return;
      }
      case 'note':
        if (msg.op === 'ready') notify(table.ready(id, msg.digest, msg.size));
        else if (msg.op === 'finish') notify(table.finish(id, msg.digest));
        else if (msg.op === 'unfollow') table.unfollow(id, msg.digest);
        else if (msg.op === 'rangeDone') notifyRanges(ranges.done(id, msg.digest, msg.flight, msg.ok));
        else if (msg.op === 'releaseTag') tagChecks.delete(msg.key);
        else if (msg.op === 'uploadClosed') uploads.close(msg.upload);
        else if (msg.op === 'share') {
          for (const other of members.values()) if (other !== m) send(other, { berth: 'shared', topic: msg.topic, data: msg.data });
        } else if (msg.op === 'admin') {
          adminPort = msg.port;
          for (const other of members.values()) send(other, { berth: 'admin', port: msg.port });
        } else if (msg.op === 'listening') {
          m.listening = true;
          if (adminPort !== undefined) send(m, { berth: 'admin', port: adminPort });
          // Until then connections go only to the workers already listening: say when the whole group serves.
          if (!allListening && [...members.values()].filter((x) => x.listening).length === count) {
            allListening = true;
            logger.info({ workers: count }, 'every worker is listening');
          }
        }
        return;
    }
  };

  const start = (slot: number) => {
    const worker = cluster.fork({ [SLOT_ENV]: String(slot), [COUNT_ENV]: String(count) });
    const m: Member = { slot, worker, listening: false };
    logger.info({ worker: slot, pid: worker.process.pid }, 'worker started');
    members.set(worker.id, m);
    worker.on('message', (msg: unknown) => {
      if (isToPrimary(msg)) receive(m, msg).catch((err: Error) => logger.error({ worker: slot, err: err.message }, 'could not answer a worker'));
    });
    worker.once('exit', (code, signal) => {
      members.delete(worker.id);
      if (slot === 0) adminPort = undefined;
      const { notices, orphans } = table.gone(worker.id);
      notify(notices);
      notifyRanges(ranges.gone(worker.id));
      if (orphans.length > 0) {
        const remove = () => Promise.all(orphans.map((p) => rm(p, { force: true })));
        const warn = (err: Error) => logger.warn({ err: err.message }, "could not remove a dead worker's partial files");
        setTimeout(() => {
          remove().catch(warn);
        }, ORPHAN_MS).unref();
      }
      for (const c of collecting.values()) if (--c.waiting === 0) c.done();
      const info = { worker: slot, pid: worker.process.pid, code, signal, fillsTakenOver: notices.length };
      if (stopping || (code === 0 && !signal)) {
        // A clean exit was asked for (a stop signal reached the worker itself): not a death.
        logger.info(info, 'worker stopped');
      } else if (!m.listening) {
        logger.fatal(info, 'a worker exited before it could serve; stopping');
        status = 1;
        stop('worker failed to start');
      } else {
        logger.error(info, 'worker died; starting a replacement (its fills are taken over by the other workers)');
        start(slot);
      }
      if (members.size === 0) finish();
    });
  };

  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason, workers: members.size }, 'stopping: every worker finishes its transfers in flight');
    for (const m of members.values()) m.worker.process.kill('SIGTERM');
    if (members.size === 0) finish();
  };

  deps.signals.once('SIGTERM', () => stop('SIGTERM'));
  deps.signals.once('SIGINT', () => stop('SIGINT'));
  deps.signals.on('SIGHUP', () => {
    for (const m of members.values()) send(m, { berth: 'reload' });
  });
  logger.info({ workers: count }, 'starting serving workers');
  for (let slot = 0; slot < count; slot++) start(slot);
  await finished;
  return status;
}
