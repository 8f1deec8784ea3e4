/** @module assembly/worker — a serving worker (http.workers): the shared assembly plus what the group shares through the primary: budget, fills, tag checks, figures, admin API, breaker and login counts. */
import type { AccessControl } from '../auth/access.js';
import type { Upstream } from '../upstream/target.js';
import type { BerthConfig } from '../config/types.js';
import { readInUse } from '../storage/in-use.js';
import { forwardingAdmin, listenPrivately } from './admin-forward.js';
import type { WorkerChannel } from '../workers/channel.js';
import { GroupBudget, grantSize } from '../workers/group-budget.js';
import { groupTelemetry } from './group-telemetry.js';
import { WorkerFills } from '../workers/worker-fills.js';
import { workerManifests } from '../workers/worker-manifests.js';
import { assemble, type App, type AppDeps } from './app.js';
import type { GroupParts } from './parts.js';
import { siteReplica } from './site-replica.js';

/** With `cluster:` the worker is also one of its site's replicas. */
export function createWorker(config: BerthConfig, deps: AppDeps, channel: WorkerChannel): Promise<App> {
  return assemble(config, deps, { group: groupParts(config, deps, channel), ...(config.cluster ? { site: siteReplica(config.cluster) } : {}) });
}

function groupParts(config: BerthConfig, deps: AppDeps, worker: WorkerChannel): GroupParts {
  const { logger } = deps;
  const root = config.storage.rootdirectory;
  let privateAdmin: { port: number; close(): Promise<void> } | undefined;
  return {
    lead: worker.lead,
    slot: worker.slot,
    budget: (u) =>
      new GroupBudget({
        ask: (n, background) => worker.budget(u.name, n, background),
        grant: grantSize(u.ratelimit),
        onLost: (err) => logger.warn({ upstream: u.name, err: err.message }, 'the WAN budget could not be asked of the primary; bytes pass uncapped'),
      }),
    claimant: (base) => `${base}-w${worker.slot}`,
    uploadBound: worker.uploadBound(),
    othersInUse: () => readInUse(root, undefined, process.pid)?.inUse,
    fills: (blobs, inner) => new WorkerFills({ channel: worker, ...(inner ? { inner } : {}), finalPath: (d) => blobs.path(d), logger }),
    downElsewhere: async () => new Set((await worker.gather('down')).flat() as string[]),
    manifests: (repos) => workerManifests(worker, repos),
    telemetry: (local) => groupTelemetry(local, worker),
    forwardAdmin: (local, hub) => forwardingAdmin(local, (ms) => worker.leadAdminPort(ms), hub),
    join: (upstreams, access, reload) => {
      worker.provide('down', () => upstreams.filter((u) => u.client.breaker.state === 'down').map((u) => u.config.name));
      shareCounts(worker, upstreams, access);
      // SIGHUP reaches the primary, which tells every worker.
      worker.onReload = () => reload('SIGHUP');
    },
    listening: async (admin) => {
      if (worker.lead) {
        privateAdmin = await listenPrivately(admin, logger);
        worker.note({ op: 'admin', port: privateAdmin.port });
      }
      worker.note({ op: 'listening' });
    },
    close: async () => {
      await privateAdmin?.close();
      worker.close();
    },
  };
}

/** One outage, one password guesser, seen by every worker: each counts the others' failures too. */
function shareCounts(worker: WorkerChannel, upstreams: readonly Upstream[], access: AccessControl): void {
  type Outcome = { upstream: string; event: 'failure' | 'success'; reason: string; noConnection: boolean; startedAt?: number };
  for (const u of upstreams)
    u.client.breaker.onLocal = (event, reason, noConnection, startedAt) =>
      worker.share('breaker', { upstream: u.config.name, event, reason, noConnection, ...(startedAt === undefined ? {} : { startedAt }) } satisfies Outcome);
  worker.onShared('breaker', (data) => {
    const { upstream, event, reason, noConnection, startedAt } = data as Outcome;
    const b = upstreams.find((u) => u.config.name === upstream)?.client.breaker;
    if (event === 'failure') b?.failure(reason, true, noConnection === true, typeof startedAt === 'number' ? startedAt : undefined);
    else b?.success(true);
  });
  const logins = access.failures;
  if (!logins) return;
  type Login = { event: 'fail' | 'succeed'; address: string; user: string };
  logins.onLocal = (event, address, user) => worker.share('login', { event, address, user } satisfies Login);
  worker.onShared('login', (data) => {
    const { event, address, user } = data as Login;
    if (event === 'fail') logins.fail(address, user, true);
    else logins.succeed(address, user, true);
  });
}
