/**
 * @module bench/fleet-scale — the hub at fleet scale: one hub berth process, N sites simulated in this
 * process (each sends the polls and results a site sends), a burst of K Harbor pre-heats, optionally
 * the hub killed (SIGKILL) and restarted mid-burst, or (`--replicas N`) N hubs on one redis-server
 * with the lead killed mid-burst (`--kill-replica`). Reports poll latency, job outcomes, job creation
 * time, view times and the hubs' CPU and memory. test/e2e/fleet-scale.test.ts runs it small.
 *
 *   npm run fleet-scale -- --sites 2000 --interval 5000 --jobs 50 --restart
 *   npm run fleet-scale -- --sites 2000 --interval 5000 --jobs 50 --replicas 2 --kill-replica
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { startBerth, type Berth } from '../test/fixtures/berth.js';
import { HUB_TOKEN, simulatedReport } from '../test/fixtures/fleet.js';
import { freePort, makeTempDir, removeDir, sleep } from '../test/fixtures/proc.js';
import { startRedis, type RedisServer } from '../test/fixtures/redis.js';
import { readCpuSeconds, readStatus } from './memory.js';
import { REPORT_BATCH_MS } from '../src/fleet/site-agent.js';

export interface ScaleOptions {
  readonly sites: number;
  readonly intervalMs: number;
  readonly jobs: number;
  /** Kill (SIGKILL) and restart the one hub mid-burst. */
  readonly restart: boolean;
  /** Hubs on one redis-server (1: one hub on hub.db). */
  readonly replicas: number;
  /** With replicas: kill the lead mid-burst; its sites move to the others, as behind a load balancer. */
  readonly killReplica: boolean;
  readonly timeoutMs: number;
  /** A directory: the hubs run with --cpu-prof and leave their profiles there. */
  readonly profileDir?: string;
}

const dispatcher = new Agent({ connections: 256, keepAliveTimeout: 30_000 });
const headers = { 'content-type': 'application/json', authorization: `Bearer ${HUB_TOKEN}` };

async function call(base: string, method: 'GET' | 'POST', p: string, body?: unknown): Promise<{ status: number; json: unknown; ms: number }> {
  const t0 = performance.now();
  const res = await request(`${base}${p}`, { method, headers, dispatcher, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? (JSON.parse(text) as unknown) : null, ms: performance.now() - t0 };
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

/**
 * One site: polls every interval (from when it was answered, as the site agent does), finishes each
 * task after a while and reports it, with the others finished meanwhile, REPORT_BATCH_MS later.
 */
class Site {
  private readonly working = new Set<string>();
  private results: Array<{ taskId: string; ok: boolean; bytesFetched: number; bytesTotal: number }> = [];
  private timer: NodeJS.Timeout | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private stopped = false;

  constructor(
    readonly name: string,
    /** The hub it polls; moved to another when its hub is killed, as behind a load balancer. */
    public hub: () => string,
    private readonly latencies: number[],
    private readonly failures: { count: number; why: Record<string, number> },
    private readonly intervalMs: number,
  ) {}

  start(delayMs: number): void {
    this.timer = setTimeout(() => void this.poll(), delayMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.reportTimer);
  }

  private async poll(): Promise<void> {
    if (this.stopped || this.polling) return;
    this.polling = true;
    clearTimeout(this.timer);
    clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
    const results = this.results;
    this.results = [];
    const report = simulatedReport(this.name, this.intervalMs);
    try {
      const r = await call(this.hub(), 'POST', '/api/v1/fleet/poll', { report, results, working: [...this.working] });
      if (r.status !== 200)
        throw new Error(`${r.status} ${String((r.json as { errors?: Array<{ message?: string }> })?.errors?.[0]?.message ?? '').slice(0, 80)}`);
      this.latencies.push(r.ms);
      for (const t of (r.json as { tasks: Array<{ taskId: string }> }).tasks) {
        if (this.working.has(t.taskId)) continue;
        this.working.add(t.taskId);
        // A pre-heat the site already holds most of: a second or two.
        setTimeout(() => this.finish(t.taskId), 500 + Math.random() * 1_500);
      }
    } catch (err) {
      this.failures.count++;
      const why = (err as Error).message;
      this.failures.why[why] = (this.failures.why[why] ?? 0) + 1;
      this.results = [...results, ...this.results];
    } finally {
      this.polling = false;
      // Results that finished while this poll was out go with the next report, not a whole interval later.
      if (!this.stopped) this.timer = setTimeout(() => void this.poll(), this.results.length > 0 ? REPORT_BATCH_MS : this.intervalMs);
    }
  }

  private finish(taskId: string): void {
    if (!this.working.delete(taskId)) return;
    this.results.push({ taskId, ok: true, bytesFetched: 0, bytesTotal: 1 });
    this.reportTimer ??= setTimeout(() => {
      this.reportTimer = undefined;
      void this.poll();
    }, REPORT_BATCH_MS);
  }
}

/** The hubs' berth_hub_poll_duration_seconds buckets (cumulative counts by upper bound in seconds), summed. */
async function pollBuckets(bases: readonly string[], out = new Map<number, number>()): Promise<Map<number, number>> {
  for (const b of bases) {
    const res = await request(`${b}/metrics`, { dispatcher }).catch(() => undefined);
    const text = res ? await res.body.text() : '';
    for (const m of text.matchAll(/^berth_hub_poll_duration_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) {
      const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
      out.set(le, (out.get(le) ?? 0) + Number(m[2]));
    }
  }
  return out;
}

/** Polls by bucket between two readings, and the bucket bound under which p50 and p99 of them fall. */
function serviceTime(before: Map<number, number>, after: Map<number, number>): Record<string, unknown> {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const cum = bounds.map((le) => (after.get(le) ?? 0) - (before.get(le) ?? 0));
  const total = cum[cum.length - 1] ?? 0;
  const under = (p: number) => {
    const i = cum.findIndex((c) => c >= (p / 100) * total);
    return i < 0 || !Number.isFinite(bounds[i]!) ? null : bounds[i]! * 1_000;
  };
  const byBucket: Record<string, number> = {};
  bounds.forEach((le, i) => (byBucket[Number.isFinite(le) ? `<=${le * 1_000}ms` : 'more'] = cum[i]! - (i > 0 ? cum[i - 1]! : 0)));
  return { polls: total, p50AtMostMs: under(50), p99AtMostMs: under(99), byBucket };
}

/** Closes the connections the runs kept open (call once, after the last run). */
export function closeFleetScale(): Promise<void> {
  return dispatcher.close();
}

/** Runs one scale scenario and returns its figures. */
export async function runFleetScale(opt: ScaleOptions): Promise<Record<string, unknown>> {
  const INTERVAL_MS = opt.intervalMs;
  const { sites: SITES, jobs: JOBS, timeoutMs: TIMEOUT_MS } = opt;
  const work = await makeTempDir('berth-fleet-scale-');
  const redis: RedisServer | undefined = opt.replicas > 1 ? await startRedis() : undefined;
  const ports = await Promise.all(Array.from({ length: opt.replicas }, () => freePort()));
  const start = (i: number) => {
    const hubConfig = redis ? { token: HUB_TOKEN, advertise: `http://127.0.0.1:${ports[i]}` } : { token: HUB_TOKEN };
    return startBerth({
      config: {
        version: 0.1,
        hub: hubConfig,
        ...(redis ? { redis: { addr: redis.addr } } : {}),
        http: { workers: 1, maxconnectionsperclient: 1024 },
        log: { level: 'warn' },
      },
      root: path.join(work, `hub-${i}`),
      port: ports[i]!,
      ...(opt.profileDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${path.resolve(opt.profileDir)}`] } : {}),
    });
  };
  // Every simulated site connects from 127.0.0.1, as does a hub forwarding to the lead: one address holds
  // the harness's 256 connections and the forwarder's, so the per-client bound is raised above both.
  // The first hub started leads (it takes the lease before the others start).
  const hubs: Berth[] = [];
  for (let i = 0; i < opt.replicas; i++) {
    hubs.push(await start(i));
    if (i === 0 && redis) await sleep(1_500);
  }
  let alive = hubs.map((_, i) => i);
  const base = () => hubs[alive[0]!]!.url;
  const latencies: number[] = [];
  const failures = { count: 0, why: {} as Record<string, number> };
  const sites = Array.from({ length: SITES }, (_, i) => {
    const at = i % hubs.length;
    return new Site(`site-${String(i).padStart(5, '0')}`, () => hubs[at]!.url, latencies, failures, INTERVAL_MS);
  });
  sites.forEach((s) => s.start(Math.random() * INTERVAL_MS));
  const cpuOf = async (hs: readonly number[]) =>
    (await Promise.all(hs.map((i) => readCpuSeconds(hubs[i]!.service.pid)))).reduce<number>((n, c) => n + (c ?? 0), 0);
  try {
    for (const t0 = Date.now(); ; await sleep(500)) {
      const s = (await call(base(), 'GET', '/api/v1/sites/summary')).json as { total: number };
      if (s.total === SITES) break;
      if (Date.now() - t0 > TIMEOUT_MS) throw new Error(`only ${s.total} of ${SITES} sites reported`);
    }
    latencies.length = 0;
    // A hub killed and started again counts from zero.
    const buckets0 = await Promise.all(hubs.map((h) => pollBuckets([h.url])));
    const cpu0 = await cpuOf(alive);
    const wall0 = performance.now();
    const created = performance.now();
    const made = await Promise.all(
      Array.from({ length: JOBS }, (_, i) =>
        call(hubs[i % hubs.length]!.url, 'POST', '/oapi/v1/jobs', {
          type: 'preheat',
          args: { type: 'image', url: `https://harbor.xing.com/v2/library/app${i}/manifests/v1` },
        }),
      ),
    );
    const createMs = performance.now() - created;
    const ids = made.map((m) => (m.json as { id: number }).id);
    let restartMs: number | undefined;
    let killMs = 0;
    let cpuBefore = 0;
    const killing = opt.killReplica && hubs.length > 1;
    if (opt.restart || killing) {
      await sleep(1_000);
      cpuBefore = (await cpuOf(alive)) - cpu0;
      const t = performance.now();
      await hubs[0]!.kill('SIGKILL');
      killMs = performance.now() - t;
      if (!killing) {
        hubs[0] = await start(0);
        buckets0[0] = new Map();
      } else {
        alive = alive.filter((i) => i !== 0);
        for (const s of sites) if (s.hub() === hubs[0]!.url) s.hub = base;
      }
      restartMs = performance.now() - t;
    }
    const cpuStart = opt.restart || killing ? await cpuOf(alive) : cpu0;
    let summary: Record<string, number> = {};
    for (const t0 = Date.now(); ; await sleep(500)) {
      const r = await call(base(), 'GET', '/api/v1/fleet/jobs/summary');
      summary = r.status === 200 ? (r.json as Record<string, number>) : {};
      if (summary['PENDING'] === 0) break;
      if (Date.now() - t0 > TIMEOUT_MS) break;
    }
    const doneMs = performance.now() - wall0;
    const cpu = cpuBefore + (await cpuOf(alive)) - cpuStart;
    const buckets1 = await pollBuckets(alive.map((i) => hubs[i]!.url));
    const bucketsBefore = new Map<number, number>();
    for (const i of alive) for (const [le, n] of buckets0[i]!) bucketsBefore.set(le, (bucketsBefore.get(le) ?? 0) + n);
    const mems = await Promise.all(alive.map((i) => readStatus(hubs[i]!.service.pid)));
    const states = await Promise.all(ids.map(async (id) => ((await call(base(), 'GET', `/oapi/v1/jobs/${id}`)).json as { state?: string }).state ?? 'LOST'));
    const jobsPage = await call(base(), 'GET', '/api/v1/fleet/jobs?limit=100');
    const sitesPage = await call(base(), 'GET', '/api/v1/sites?limit=5000');
    const sitesSummary = await call(base(), 'GET', '/api/v1/sites/summary');
    const failedParts = ((jobsPage.json as Array<{ parts: { failure: number } }>) ?? []).reduce((n, j) => n + j.parts.failure, 0);
    return {
      sites: SITES,
      intervalMs: INTERVAL_MS,
      jobs: JOBS,
      restart: opt.restart,
      replicas: opt.replicas,
      killReplica: opt.killReplica,
      jobCreationMs: Math.round(createMs),
      allJobsDoneMs: Math.round(doneMs),
      // From the SIGKILL to the new hub's first answer (its /v2/), and of that the wait for the old one to exit.
      ...(restartMs !== undefined ? { hubRestartMs: Math.round(restartMs), hubExitMs: Math.round(killMs) } : {}),
      jobStates: states.reduce<Record<string, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {}),
      failedParts,
      polls: latencies.length,
      pollFailures: failures.count,
      // From the sites' start on (the hubs' start-up included): polls a hub refused with 503, apart
      // from those cut by the killed hub itself (which a load balancer would send elsewhere).
      poll503: Object.entries(failures.why).reduce((n, [why, k]) => n + (why.startsWith('503 ') ? k : 0), 0),
      pollFailureReasons: { ...failures.why },
      pollP50Ms: Math.round(pct(latencies, 50) * 10) / 10,
      pollP99Ms: Math.round(pct(latencies, 99) * 10) / 10,
      // Inside the hub (berth_hub_poll_duration_seconds of the hubs alive at the end); the rest of
      // what the sites saw is the wait for a CPU on this machine and the network.
      hubPollService: serviceTime(bucketsBefore, buckets1),
      hubCpuPercent: Math.round((cpu / (doneMs / 1000)) * 100),
      hubRssMiB: Math.round(mems.reduce((n, m) => n + (m?.rssKiB ?? 0), 0) / 1024),
      viewMs: { sitesPage: Math.round(sitesPage.ms), sitesSummary: Math.round(sitesSummary.ms), jobsPage: Math.round(jobsPage.ms) },
    };
  } finally {
    sites.forEach((s) => s.stop());
    await Promise.all(alive.map((i) => hubs[i]!.stop().catch(() => undefined)));
    await redis?.stop();
    await removeDir(work);
  }
}

const OPTIONS = {
  sites: { type: 'string', default: '200' },
  interval: { type: 'string', default: '2000' },
  jobs: { type: 'string', default: '10' },
  restart: { type: 'boolean', default: false },
  replicas: { type: 'string', default: '1' },
  'kill-replica': { type: 'boolean', default: false },
  timeout: { type: 'string', default: '300' },
  profile: { type: 'string' },
} as const;

const USAGE = `usage: npm run fleet-scale -- [options]
  --sites N         simulated sites polling the hub (200)
  --interval MS     each site's poll interval (2000)
  --jobs K          pre-heat jobs created at once, each for every site (10)
  --restart         SIGKILL the one hub mid-burst and start it again
  --replicas R      hubs on one redis-server (1: one hub on hub.db)
  --kill-replica    with --replicas: SIGKILL the lead mid-burst
  --timeout S       give up after S seconds (300)
  --profile DIR     run the hubs with --cpu-prof, profiles left in DIR
Prints one JSON document: poll latency (sites' and the hub's own), job outcomes, hub CPU and RSS.
`;

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ options: { ...OPTIONS, help: { type: 'boolean', short: 'h', default: false } } });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const opt = parsed.values;
  if (opt.help) {
    process.stdout.write(USAGE);
    return;
  }
  const out = await runFleetScale({
    sites: Number(opt.sites),
    intervalMs: Number(opt.interval),
    jobs: Number(opt.jobs),
    restart: opt.restart,
    replicas: Math.max(1, Number(opt.replicas)),
    killReplica: opt['kill-replica'],
    timeoutMs: Number(opt.timeout) * 1000,
    ...(opt.profile ? { profileDir: opt.profile } : {}),
  });
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  await closeFleetScale();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
