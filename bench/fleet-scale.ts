/**
 * @module bench/fleet-scale — the hub at fleet scale: one hub berth process, N sites simulated in this
 * process (each sends the polls and results a site sends), a burst of K Harbor pre-heats, optionally
 * the hub killed (SIGKILL) and restarted mid-burst. Reports poll latency, job outcomes, job creation
 * time, view times and the hub's CPU and memory.
 *
 *   npm run fleet-scale -- --sites 2000 --interval 5000 --jobs 50 --restart
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { startBerth, type Berth } from '../test/fixtures/berth.js';
import { HUB_TOKEN, simulatedReport } from '../test/fixtures/fleet.js';
import { freePort, makeTempDir, removeDir, sleep } from '../test/fixtures/proc.js';
import { readCpuSeconds, readStatus } from './memory.js';

const { values: opt } = parseArgs({
  options: {
    sites: { type: 'string', default: '200' },
    interval: { type: 'string', default: '2000' },
    jobs: { type: 'string', default: '10' },
    restart: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '300' },
  },
});
const SITES = Number(opt.sites);
const INTERVAL_MS = Number(opt.interval);
const JOBS = Number(opt.jobs);
const TIMEOUT_MS = Number(opt.timeout) * 1000;

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

/** One site: polls every interval (from when it was answered, as the site agent does), finishes each task after a while and polls at once to report it. */
class Site {
  private readonly working = new Set<string>();
  private results: Array<{ taskId: string; ok: boolean; bytesFetched: number; bytesTotal: number }> = [];
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private stopped = false;

  constructor(
    readonly name: string,
    private readonly hub: () => string,
    private readonly latencies: number[],
    private readonly failures: { count: number },
  ) {}

  start(delayMs: number): void {
    this.timer = setTimeout(() => void this.poll(), delayMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.stopped || this.polling) return;
    this.polling = true;
    clearTimeout(this.timer);
    const results = this.results;
    this.results = [];
    const report = simulatedReport(this.name, INTERVAL_MS);
    try {
      const r = await call(this.hub(), 'POST', '/api/v1/fleet/poll', { report, results, working: [...this.working] });
      if (r.status !== 200) throw new Error(String(r.status));
      this.latencies.push(r.ms);
      for (const t of (r.json as { tasks: Array<{ taskId: string }> }).tasks) {
        if (this.working.has(t.taskId)) continue;
        this.working.add(t.taskId);
        // A pre-heat the site already holds most of: a second or two.
        setTimeout(() => this.finish(t.taskId), 500 + Math.random() * 1_500);
      }
    } catch {
      this.failures.count++;
      this.results = [...results, ...this.results];
    } finally {
      this.polling = false;
      if (!this.stopped) this.timer = setTimeout(() => void this.poll(), INTERVAL_MS);
    }
  }

  private finish(taskId: string): void {
    if (!this.working.delete(taskId)) return;
    this.results.push({ taskId, ok: true, bytesFetched: 0, bytesTotal: 1 });
    void this.poll();
  }
}

async function main(): Promise<void> {
  const work = await makeTempDir('berth-fleet-scale-');
  const port = await freePort();
  const start = () =>
    startBerth({ config: { version: 0.1, hub: { token: HUB_TOKEN }, http: { workers: 1 }, log: { level: 'warn' } }, root: path.join(work, 'hub'), port });
  let hub: Berth = await start();
  const base = () => hub.url;
  const latencies: number[] = [];
  const failures = { count: 0 };
  const sites = Array.from({ length: SITES }, (_, i) => new Site(`site-${String(i).padStart(5, '0')}`, base, latencies, failures));
  sites.forEach((s) => s.start(Math.random() * INTERVAL_MS));
  try {
    for (const t0 = Date.now(); ; await sleep(500)) {
      const s = (await call(base(), 'GET', '/api/v1/sites/summary')).json as { total: number };
      if (s.total === SITES) break;
      if (Date.now() - t0 > TIMEOUT_MS) throw new Error(`only ${s.total} of ${SITES} sites reported`);
    }
    latencies.length = 0;
    const cpu0 = (await readCpuSeconds(hub.service.pid)) ?? 0;
    const wall0 = performance.now();
    const created = performance.now();
    const made = await Promise.all(
      Array.from({ length: JOBS }, (_, i) =>
        call(base(), 'POST', '/oapi/v1/jobs', { type: 'preheat', args: { type: 'image', url: `https://harbor.xing.com/v2/library/app${i}/manifests/v1` } }),
      ),
    );
    const createMs = performance.now() - created;
    const ids = made.map((m) => (m.json as { id: number }).id);
    let restartMs: number | undefined;
    let cpuBefore = 0;
    if (opt.restart) {
      await sleep(1_000);
      cpuBefore = ((await readCpuSeconds(hub.service.pid)) ?? 0) - cpu0;
      const t = performance.now();
      await hub.kill('SIGKILL');
      hub = await start();
      restartMs = performance.now() - t;
    }
    const cpuStart = opt.restart ? ((await readCpuSeconds(hub.service.pid)) ?? 0) : cpu0;
    let summary: Record<string, number> = {};
    for (const t0 = Date.now(); ; await sleep(500)) {
      summary = (await call(base(), 'GET', '/api/v1/fleet/jobs/summary')).json as Record<string, number>;
      if (summary['PENDING'] === 0) break;
      if (Date.now() - t0 > TIMEOUT_MS) break;
    }
    const doneMs = performance.now() - wall0;
    const cpu = cpuBefore + ((await readCpuSeconds(hub.service.pid)) ?? 0) - cpuStart;
    const mem = await readStatus(hub.service.pid);
    const states = await Promise.all(ids.map(async (id) => ((await call(base(), 'GET', `/oapi/v1/jobs/${id}`)).json as { state?: string }).state ?? 'LOST'));
    const jobsPage = await call(base(), 'GET', '/api/v1/fleet/jobs?limit=100');
    const sitesPage = await call(base(), 'GET', '/api/v1/sites?limit=5000');
    const sitesSummary = await call(base(), 'GET', '/api/v1/sites/summary');
    const failedParts = ((jobsPage.json as Array<{ parts: { failure: number } }>) ?? []).reduce((n, j) => n + j.parts.failure, 0);
    const out = {
      sites: SITES,
      intervalMs: INTERVAL_MS,
      jobs: JOBS,
      restart: opt.restart,
      jobCreationMs: Math.round(createMs),
      allJobsDoneMs: Math.round(doneMs),
      ...(restartMs !== undefined ? { hubRestartMs: Math.round(restartMs) } : {}),
      jobStates: states.reduce<Record<string, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {}),
      failedParts,
      polls: latencies.length,
      pollFailures: failures.count,
      pollP50Ms: Math.round(pct(latencies, 50) * 10) / 10,
      pollP99Ms: Math.round(pct(latencies, 99) * 10) / 10,
      hubCpuPercent: Math.round((cpu / (doneMs / 1000)) * 100),
      hubRssMiB: Math.round((mem?.rssKiB ?? 0) / 1024),
      viewMs: { sitesPage: Math.round(sitesPage.ms), sitesSummary: Math.round(sitesSummary.ms), jobsPage: Math.round(jobsPage.ms) },
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } finally {
    sites.forEach((s) => s.stop());
    await hub.stop().catch(() => undefined);
    await dispatcher.close();
    await removeDir(work);
  }
}

await main();
