/**
 * @module fleet/hub — the hub's HTTP surface (docs/design.md §12): Harbor's preheat provider API in both
 * generations, push events, the sites' poll, and GET /api/v1/sites. Every endpoint needs the hub token.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { ApiError, readJsonBody, sendApiError, type AdminCredentials } from '../http/admin-io.js';
import { sendJson } from '../http/respond.js';
import { hubGate } from './auth.js';
import { Admission, DEFAULT_ADMISSION, loopDelayMeter, type AdmissionLimits } from './admission.js';
import { pushedImages } from './events.js';
import { parseJobRequest, parsePreheatRequest, renderJob, renderPreheat } from './harbor.js';
import type { HubState, HubWrite, StoredJob, StoredSite } from '../ports/hub-state.js';
import { FleetJobs, type FleetJob } from './jobs.js';
import type { PollRequest, PollResponse, SiteReport, TaskResult } from './hub-protocol.js';
import { SiteBook, siteMatcher } from './sites.js';
import { jobView, jobsView, sitesView, summaryView } from './views.js';
import type { ExportSource } from '../cache/bundle-build.js';
import { BUNDLE_PATH, HELD_PATH, SITE_HELD_PATH, putHeld, sendHeld, sendSiteBundle, type BundleDeps } from './hub-bundle.js';

export interface HubDeps {
  readonly token: string;
  /** The admin credentials also open GET /api/v1/sites and the job list (the dashboard). */
  readonly admin?: AdminCredentials;
  readonly logger: Logger;
  readonly now: () => number;
  /** Where jobs, parts and sites' reports outlive the process (the store's hub.db, or Redis). */
  readonly state: HubState;
  /** When sites are asked to slow down (tests lower them); the event loop's delay (tests set it). */
  readonly admission?: AdmissionLimits;
  readonly loopDelayMs?: () => number;
  /** Where site bundles read images: the hub's own cache (fleet/hub-bundle.ts). */
  readonly bundleSource?: ExportSource;
  /** Each poll's time in the hub, arrival to last byte sent, in seconds (berth_hub_poll_duration_seconds). */
  readonly observePoll?: (seconds: number) => void;
}

export type HubHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

export interface Hub {
  readonly handle: HubHandler;
  readonly sites: SiteBook;
  readonly jobs: FleetJobs;
  /** Resolves once the state a previous run left is loaded. */
  readonly ready: Promise<void>;
  /** Stops the sweep for silent sites and closes the state. */
  close(): Promise<void>;
}

interface Reply {
  readonly status?: number;
  readonly body: unknown;
  readonly next?: string;
  /** Seconds the caller should wait before it asks again (a stretched poll answer). */
  readonly retryAfter?: number;
}

/** How long a write waits for others to share its transaction. */
const GROUP_COMMIT_MS = 10;

const POLL_PATH = '/api/v1/fleet/poll';

/** Inbox entries applied per sweep (replicas: results taken while no lead answered). */
const INBOX_BATCH = 500;

/** How often sites that fell silent have their open parts failed. */
const SWEEP_MS = 1_000;

/** Harbor appends its paths to the provider endpoint, so `https://hub/sites/eu-*` targets those sites only. */
const SELECTOR_PREFIX = /^\/sites\/([^/]+)(\/.*)$/;
const HARBOR_PATHS = /^\/(healthy|_ping|oapi\/v1\/jobs(\/[^/]+)?|preheats(\/[^/]+)?)$/;

/** Paths the hub may answer outside /api/ (its Harbor-compatible endpoints, bare or under /sites/<selector>). */
export function isHubPath(path: string): boolean {
  return HARBOR_PATHS.test(path) || SELECTOR_PREFIX.test(path);
}

/**
 * What the hub makes of a path: undefined when it is not one of the hub's; `selector` undefined
 * when the one in the path is malformed; `readOnly` paths also open with the admin credentials.
 */
export function hubPath(pathname: string): { path: string; selector: string | undefined; readOnly: boolean } | undefined {
  let path = pathname;
  let selector: string | undefined = '';
  const sel = SELECTOR_PREFIX.exec(path);
  if (sel && HARBOR_PATHS.test(sel[2]!)) {
    selector = decodedSelector(sel[1]!);
    path = sel[2]!;
  }
  const fleetApi = /^\/api\/v1\/(sites|sites\/summary|sites\/[^/]+\/(bundle|held)|events|fleet\/.+)$/.test(path);
  if (!fleetApi && !HARBOR_PATHS.test(path)) return undefined;
  return { path, selector, readOnly: /^\/api\/v1\/(sites(\/summary)?|sites\/[^/]+\/(bundle|held)|fleet\/jobs(\/[^/]+)?)$/.test(path) };
}

export function createHub(deps: HubDeps): Hub {
  const meter = deps.loopDelayMs ? undefined : loopDelayMeter();
  const admission = new Admission(deps.admission ?? DEFAULT_ADMISSION, deps.loopDelayMs ?? meter!.read);
  const sites = new SiteBook(deps.now);
  const jobs = new FleetJobs(sites, deps.now, (floor) => deps.state.nextJobId(floor));
  const loaded = deps.state.load().then((state) => {
    sites.restore(state.sites);
    jobs.restore(state.jobs);
    deps.logger.info({ sites: state.sites.length, jobs: state.jobs.length }, 'hub state loaded');
  });
  // Results left while no lead answered are applied before the first poll: their tasks are not handed out again.
  const ready = loaded.then(() => drainInbox().catch((err: unknown) => deps.logger.error({ err }, 'hub inbox could not be applied')));
  /** Writes what changed before the answer goes out: an answered request is never lost by a restart. */
  // Group commit: every request answered within GROUP_COMMIT_MS shares one transaction (under load
  // the commits, not the rows, are what a write costs). Sites' unchanged reports are not written
  // again; when they were seen is, once a second (`seen`, taken by the sweep).
  const queued = new Map<string, StoredSite>();
  const seenQueue = new Map<string, number>();
  let flushing: Promise<void> | undefined;
  let flushSeen = false;
  const persist = (changed: readonly StoredSite[] = [], withSeen = false): Promise<void> => {
    for (const site of changed) queued.set(site.name, site);
    flushSeen ||= withSeen;
    flushing ??= new Promise<void>((resolve) => setTimeout(resolve, GROUP_COMMIT_MS)).then(async () => {
      flushing = undefined;
      const sitesNow = [...queued.values()];
      queued.clear();
      for (const site of sitesNow) seenQueue.delete(site.name);
      const seen = flushSeen ? [...seenQueue].map(([name, at]) => ({ name, at })) : [];
      if (flushSeen) seenQueue.clear();
      flushSeen = false;
      // Sent at once, in order: the state applies writes in the order sent (one worker thread, one
      // Redis connection), so a later part's state is never overwritten by an earlier write.
      await Promise.all(slices({ ...jobs.takeWrites(), sites: sitesNow, seen }).map((w) => deps.state.write(w)));
    });
    return flushing;
  };
  /**
   * Results that hubs not leading took while no lead answered (replicas): applied, written, then
   * dropped. Drains run one at a time; a caller joins the drain queued but not begun (it reads the
   * inbox after the caller asked), else queues one.
   */
  let drainTurn: Promise<void> = Promise.resolve();
  let drainQueued: Promise<void> | undefined;
  const drainInbox = (): Promise<void> => {
    if (drainQueued) return drainQueued;
    const turn = drainTurn.then(async () => {
      drainQueued = undefined;
      await drainOnce();
    });
    drainQueued = turn;
    drainTurn = turn.catch(() => undefined);
    return turn;
  };
  const drainOnce = async (): Promise<void> => {
    if (!deps.state.inbox) return;
    await loaded;
    for (;;) {
      const batch = await deps.state.inbox(INBOX_BATCH);
      if (batch.entries.length === 0) return;
      for (const e of batch.entries) if (typeof e.site === 'string' && Array.isArray(e.results)) jobs.complete(e.site, validResults(e.results));
      await persist();
      await batch.done();
      if (batch.entries.length < INBOX_BATCH) return;
    }
  };
  /**
   * Before a site is handed tasks: a hub not leading may have taken its results for them after the
   * last drain (the site was answered, so they are in the inbox by now), and they are applied first.
   */
  const inboxApplied = async (): Promise<void> => {
    if (deps.state.inboxLength && (await deps.state.inboxLength()) > 0) await drainInbox();
  };
  let sweeping = false;
  const sweep = setInterval(() => {
    // Skipped while the last sweep's drain runs (a slow Redis): drains would pile up.
    if (!sweeping) {
      sweeping = true;
      drainInbox()
        .catch((err: unknown) => deps.logger.error({ err }, 'hub inbox could not be applied'))
        .finally(() => (sweeping = false));
    }
    jobs.sweep();
    persist([], true).catch((err: unknown) => deps.logger.error({ err }, 'hub state write failed'));
  }, SWEEP_MS);
  sweep.unref();

  const preheat = async (image: string, url: string, source: string, selector: string, digest?: string) => {
    const made = await jobs.create({ image, url, source, selector, matches: siteMatcher(selector), ...(digest ? { digest } : {}) });
    if (!made.duplicate) {
      await persist();
      deps.logger.info({ job: made.job.id, image, source, selector: selector || undefined, sites: made.job.sites.length }, 'pre-heat job created');
    }
    return made;
  };
  const jobById = (raw: string): FleetJob => {
    const job = /^\d+$/.test(raw) ? jobs.get(Number(raw)) : undefined;
    if (!job) throw new ApiError(404, 'NOT_FOUND', `no pre-heat job ${raw.slice(0, 100)}; the hub keeps every unfinished job and the last 1000 finished`);
    return job;
  };

  /** The hash of each site's held list as stored, read from the state once per site (fleet/held.ts). */
  const heldHashes = new Map<string, string>();
  const heldHash = async (site: string): Promise<string | null> => {
    const known = heldHashes.get(site) ?? (await deps.state.heldHash(site));
    if (known !== undefined) heldHashes.set(site, known);
    return known ?? null;
  };
  const bundleDeps: BundleDeps = {
    known: (site) => sites.names().includes(site),
    state: deps.state,
    ...(deps.bundleSource ? { source: deps.bundleSource } : {}),
    logger: deps.logger,
    now: deps.now,
    building: { count: 0 },
  };

  const route = async (req: IncomingMessage, path: string, selector: string, url: URL, arrived: number): Promise<Reply | undefined> => {
    const m = req.method === 'HEAD' ? 'GET' : req.method;
    const at = (method: string, p: RegExp) => m === method && p.test(path);
    if (at('PUT', HELD_PATH)) return { body: await putHeld(bundleDeps, req, HELD_PATH.exec(path)![1]!, heldHashes) };
    if (at('GET', /^\/(healthy|_ping)$/)) return { body: { status: 'ok' } };
    if (at('POST', /^\/oapi\/v1\/jobs$/)) {
      const body = parseJobRequest(await readJsonBody(req));
      // Never 208 here: the current driver treats any 208 as an error.
      const { job } = await preheat(body.image, body.url, 'harbor', selector);
      return { body: renderJob(jobs, job, body.url, deps.now()) };
    }
    if (at('GET', /^\/oapi\/v1\/jobs\/[^/]+$/)) {
      const job = jobById(path.split('/')[4]!);
      return { body: renderJob(jobs, job, job.url, deps.now()) };
    }
    if (at('POST', /^\/preheats$/)) {
      const body = parsePreheatRequest(await readJsonBody(req));
      const { job, duplicate } = await preheat(body.image, body.url, 'harbor-v1', selector, body.digest);
      // 208 Already Reported: Harbor 2.1 marks the task successful at once.
      return { status: duplicate ? 208 : 200, body: { ID: String(job.id) } };
    }
    if (at('GET', /^\/preheats\/[^/]+$/)) return { body: renderPreheat(jobs, jobById(path.split('/')[2]!)) };
    if (at('POST', /^\/api\/v1\/events$/)) {
      const sel = url.searchParams.get('sites') ?? selector;
      const pushed = pushedImages(await readJsonBody(req));
      const made = [];
      for (const p of pushed) made.push({ ...(await preheat(p.image, p.image, 'event', sel, p.digest)), digest: p.digest });
      return { status: 202, body: { jobs: made.map((x) => ({ id: x.job.id, image: x.job.image, digest: x.digest, duplicate: x.duplicate })) } };
    }
    if (m === 'POST' && path === POLL_PATH) {
      const answer = await poll(await readJsonBody(req), arrived);
      // The header too, for sites and proxies that read only Retry-After.
      return { body: answer, ...(answer.retryAfterMs ? { retryAfter: Math.ceil(answer.retryAfterMs / 1_000) } : {}) };
    }
    if (at('GET', /^\/api\/v1\/sites$/)) return sitesView(sites, url);
    if (at('GET', /^\/api\/v1\/sites\/summary$/)) return summaryView('sites', sites, jobs, url);
    if (at('GET', /^\/api\/v1\/fleet\/jobs$/)) return jobsView(jobs, url);
    if (at('GET', /^\/api\/v1\/fleet\/jobs\/summary$/)) return summaryView('jobs', sites, jobs, url);
    if (at('GET', /^\/api\/v1\/fleet\/jobs\/[^/]+$/)) return jobView(jobs, jobById(path.split('/')[5]!), url);
    return undefined;
  };

  /** The site counts as heard from when its poll arrived; it stays up while the hub works on the answer. */
  const poll = async (body: Record<string, unknown>, arrived: number): Promise<PollResponse> => {
    const req = checkPoll(body);
    const seen = sites.arrive(req.report, arrived);
    if (!seen.changed) seenQueue.set(seen.site.name, seen.site.at);
    admission.enter();
    let retryAfterMs = 0;
    try {
      jobs.complete(req.report.name, req.results);
      if (jobs.hasTasksFor(req.report.name, req.working)) await inboxApplied();
      const tasks = jobs.tasksFor(req.report.name, req.working);
      // Results are acknowledged by the answer, so they are written first; a poll with none waits
      // for no write (its report is written with the next batch, a lost one is re-sent next poll),
      // and one with an unchanged report and no results writes nothing now.
      if (req.results.length > 0) await persist(seen.changed ? [seen.site] : []);
      else if (seen.changed) persist([seen.site]).catch((err: unknown) => deps.logger.error({ err }, 'hub state write failed'));
      retryAfterMs = admission.retryAfterMs(req.report.intervalMs);
      // Only to sites that send a hash: they send their list when it differs.
      const held = req.report.held ? { heldHash: await heldHash(req.report.name) } : {};
      return retryAfterMs > 0 ? { tasks, retryAfterMs, ...held } : { tasks, ...held };
    } finally {
      admission.done();
      sites.answered(req.report.name, retryAfterMs);
    }
  };

  const admit = hubGate(deps.token, deps.admin, deps.now);

  const handle: HubHandler = async (req, res, url) => {
    const arrived = deps.now();
    const owned = hubPath(url.pathname);
    if (!owned) return false;
    const { path, selector, readOnly } = owned;
    if (deps.observePoll && path === POLL_PATH) {
      // A monotonic clock of its own: the service time is sub-millisecond when the hub has room.
      const t0 = performance.now();
      const observe = deps.observePoll;
      res.once('finish', () => observe((performance.now() - t0) / 1_000));
    }
    const head = req.method === 'HEAD';
    res.setHeader('Cache-Control', 'no-store');
    try {
      if (selector === undefined) throw new ApiError(400, 'INVALID_REQUEST', 'the selector in the path is not valid percent-encoding');
      admit(req, readOnly);
      await ready;
      const bundle = BUNDLE_PATH.exec(path);
      if (bundle && (req.method === 'GET' || head)) {
        await sendSiteBundle(bundleDeps, req, res, bundle[1]!, url);
        return true;
      }
      const held = SITE_HELD_PATH.exec(path);
      if (held && (req.method === 'GET' || head)) {
        await sendHeld(bundleDeps, req, res, held[1]!);
        return true;
      }
      const out = await route(req, path, selector, url, arrived);
      if (!out) throw new ApiError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not supported on ${path}`);
      if (out.next) res.setHeader('Link', `<${out.next}>; rel="next"`);
      if (out.retryAfter) res.setHeader('Retry-After', String(out.retryAfter));
      sendJson(res, out.status ?? 200, out.body, head);
    } catch (err) {
      const sent = sendApiError(res, err, head);
      if (sent.status >= 500) deps.logger.error({ err, path }, 'hub request failed');
    }
    return true;
  };
  return {
    handle,
    sites,
    jobs,
    ready,
    close: async () => {
      clearInterval(sweep);
      meter?.stop();
      await ready.catch(() => undefined);
      await persist([], true).catch(() => undefined);
      await deps.state.close();
    },
  };
}

/** Rows a write holds at most (a fan-out's sites counted each) before the rest goes in another. */
const ROWS_PER_WRITE = 2_000;

/**
 * One write cut into several, none much above ROWS_PER_WRITE rows: each job with its fan-out (so
 * no job is read back without its parts), then the rest, applied after them (a finished part
 * overrides the pending one its fan-out wrote).
 */
export function slices(w: HubWrite): HubWrite[] {
  const out: HubWrite[] = [];
  const fanOuts = w.pendingParts ?? [];
  const withFanOut = new Set(fanOuts.map((p) => p.job));
  let batch: { jobs: StoredJob[]; pendingParts: Array<{ job: number; sites: readonly string[] }>; rows: number } = { jobs: [], pendingParts: [], rows: 0 };
  for (const p of fanOuts) {
    if (batch.rows > 0 && batch.rows + p.sites.length > ROWS_PER_WRITE) {
      out.push({ jobs: batch.jobs, pendingParts: batch.pendingParts });
      batch = { jobs: [], pendingParts: [], rows: 0 };
    }
    batch.pendingParts.push(p);
    batch.jobs.push(...(w.jobs ?? []).filter((j) => j.id === p.job && !batch.jobs.includes(j)));
    batch.rows += p.sites.length + 1;
  }
  if (batch.rows > 0) out.push({ jobs: batch.jobs, pendingParts: batch.pendingParts });
  const rest: HubWrite = {
    sites: w.sites ?? [],
    seen: w.seen ?? [],
    jobs: (w.jobs ?? []).filter((j) => !withFanOut.has(j.id)),
    parts: w.parts ?? [],
    deleteJobs: w.deleteJobs ?? [],
  };
  if (rest.sites!.length + rest.seen!.length + rest.jobs!.length + rest.parts!.length + rest.deleteJobs!.length > 0) out.push(rest);
  return out;
}

/** The site selector of a Harbor-style path, or undefined when its percent-encoding is malformed. */
function decodedSelector(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

function validResults(results: readonly unknown[]): TaskResult[] {
  return (results as TaskResult[]).filter((r) => r && typeof r === 'object' && typeof r.taskId === 'string');
}

function checkPoll(body: Record<string, unknown>): PollRequest {
  const report = body['report'] as SiteReport | undefined;
  if (!report || typeof report !== 'object' || typeof report.name !== 'string' || report.name === '' || typeof report.intervalMs !== 'number') {
    throw new ApiError(400, 'INVALID_REQUEST', 'field "report" is required: the site\'s report with at least name and intervalMs');
  }
  const results = Array.isArray(body['results']) ? validResults(body['results']) : [];
  const working = Array.isArray(body['working']) ? (body['working'] as unknown[]).filter((w): w is string => typeof w === 'string') : [];
  return { report, results, working };
}
