/**
 * @module fleet/site-agent — a site's side of the fleet: polls the hub over an outbound connection,
 * reports, and pre-heats what it is given through its own warm-up jobs (own upstreams, own credentials).
 */
import { request } from '../util/undici.js';
import type { Logger } from 'pino';
import type { SiteConfig } from '../config/fleet.js';
import type { WarmJob, WarmJobs } from '../cache/warm-up.js';
import { DEFAULT_PLATFORMS } from '../oci/platform.js';
import { MAX_STRETCH } from './admission.js';
import { heldList } from './held.js';
import type { PollResponse, SiteReport, SiteTask, TaskResult } from './hub-protocol.js';

export interface AgentDeps {
  readonly site: SiteConfig;
  readonly warm: WarmJobs;
  /** The report sent with every poll (store, images, WAN bytes, upstreams, jobs). */
  readonly report: () => Promise<SiteReport>;
  readonly logger: Logger;
  /** The digests of the blobs the site holds (sent to the hub when they change, fleet/held.ts). */
  readonly held?: () => Promise<readonly string[]>;
  /** Waits before a retry of a pre-heat whose manifest was not readable yet (tests shorten it). */
  readonly retryDelaysMs?: readonly number[];
  /** The clock (an HTTP-date in Retry-After is read against it) and the timer of the next poll; tests fake both. */
  readonly now?: () => number;
  readonly schedule?: (run: () => void, ms: number) => { cancel(): void };
}

/** A pushed manifest may not be readable at once (replication lag): retried after these waits. */
const RETRY_DELAYS_MS = [1_000, 2_000, 4_000, 8_000];
const POLL_TIMEOUT_MS = 30_000;
/**
 * A finished pre-heat is reported this long after it finished, with every other one finished
 * meanwhile: a burst of jobs costs the hub a few polls per site, not one per job.
 */
export const REPORT_BATCH_MS = 1_000;

/** A hub (or what stands in front of it) that answers 503 or 429 is waited for at most this many intervals... */
export const MAX_BACKOFF_INTERVALS = 4;
/** ...and never longer than this, unless the interval itself is longer. */
export const MAX_BACKOFF_MS = 5 * 60_000;

const finite = (ms: number | undefined) => (typeof ms === 'number' && Number.isFinite(ms) ? ms : 0);

/** A loaded hub asks for a longer wait (at most a few intervals, fleet/admission.ts); never shorter than the interval. */
export function nextPollMs(intervalMs: number, retryAfterMs: number | undefined): number {
  return Math.min(Math.max(intervalMs, finite(retryAfterMs)), intervalMs * MAX_STRETCH);
}

/** After a 503 or 429: the Retry-After asked, never sooner than the interval, never later than a few intervals or 5 minutes. */
export function backoffMs(intervalMs: number, retryAfterMs: number | undefined): number {
  const most = Math.max(intervalMs, Math.min(intervalMs * MAX_BACKOFF_INTERVALS, MAX_BACKOFF_MS));
  return Math.min(Math.max(intervalMs, finite(retryAfterMs)), most);
}

/** A Retry-After header (delay-seconds or an HTTP-date) as ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1_000;
  // An HTTP-date names its day and month (Date.parse alone would take "-5" for a year).
  const at = /^[a-z]{3}, /i.test(text) ? Date.parse(text) : NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export class SiteAgent {
  private timer: { cancel(): void } | undefined;
  /** The poll that will report finished pre-heats, when one is due. */
  private reportTimer: { cancel(): void } | undefined;
  private stopped = false;
  private polling = false;
  private again = false;
  private readonly working = new Set<string>();
  private finished: TaskResult[] = [];
  private lastError: string | undefined;
  /** How long to wait before the next poll, as the hub's last answer asked (admission control, or a 503/429). */
  private waitMs: number;
  private readonly now: () => number;
  private readonly schedule: (run: () => void, ms: number) => { cancel(): void };

  constructor(private readonly deps: AgentDeps) {
    this.waitMs = deps.site.intervalMs;
    this.now = deps.now ?? Date.now;
    this.schedule =
      deps.schedule ??
      ((run, ms) => {
        const t = setTimeout(run, ms);
        return { cancel: () => clearTimeout(t) };
      });
  }

  start(): void {
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.reportTimer?.cancel();
  }

  /** Polls now (and keeps polling every interval). */
  private kick(): void {
    if (this.stopped) return;
    if (this.polling) {
      this.again = true;
      return;
    }
    this.timer?.cancel();
    this.reportTimer?.cancel();
    this.reportTimer = undefined;
    this.polling = true;
    this.poll()
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'fleet poll failed'))
      .finally(() => {
        this.polling = false;
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          this.kick();
          return;
        }
        this.timer = this.schedule(() => this.kick(), this.waitMs);
      });
  }

  private async poll(): Promise<void> {
    const { site, logger } = this.deps;
    const results = this.finished;
    this.finished = [];
    this.waitMs = site.intervalMs;
    try {
      // Without a list (the index failing) the site still reports; the hub keeps the last list it had.
      const held = this.deps.held ? await this.deps.held().then(heldList, () => undefined) : undefined;
      const report = await this.deps.report();
      const body = JSON.stringify({ report: held ? { ...report, held: { hash: held.hash, count: held.count } } : report, results, working: [...this.working] });
      const res = await this.call('POST', '/api/v1/fleet/poll', 'application/json', body);
      const asked = parseRetryAfter(res.retryAfter, this.now());
      if (res.status === 503 || res.status === 429) this.waitMs = backoffMs(site.intervalMs, asked);
      const answer = JSON.parse(res.ok()) as PollResponse;
      this.waitMs = nextPollMs(site.intervalMs, answer.retryAfterMs ?? asked);
      if (this.lastError) logger.info({ hub: site.hub }, 'reaching the hub again');
      this.lastError = undefined;
      for (const task of answer.tasks ?? []) this.run(task);
      // Results are delivered by now: a failed list is sent again after the next poll, nothing else is.
      if (held && answer.heldHash !== undefined && answer.heldHash !== held.hash)
        await this.sendHeld(held.body).catch((err: Error) => logger.warn({ hub: site.hub, err: err.message }, 'cannot send the list of held blobs to the hub'));
    } catch (err) {
      // Results not delivered go with the next poll.
      this.finished = [...results, ...this.finished];
      const why = (err as Error).message;
      if (why !== this.lastError) logger.warn({ hub: site.hub, err: why, retryInMs: this.waitMs }, 'cannot reach the hub; retrying');
      this.lastError = why;
    }
  }

  /** The whole list, only when the hub's copy differs: a hub with thousands of sites gets a hash per poll. */
  private async sendHeld(body: string): Promise<void> {
    (await this.call('PUT', `/api/v1/fleet/held/${encodeURIComponent(this.deps.site.name)}`, 'text/plain', body)).ok();
  }

  /** One call to the hub with the site's token: its status, its Retry-After, and its text (ok() throws naming any status but 200). */
  private async call(
    method: 'POST' | 'PUT',
    path: string,
    contentType: string,
    body: string,
  ): Promise<{ status: number; retryAfter: string | string[] | undefined; ok(): string }> {
    const { site } = this.deps;
    const res = await request(`${site.hub}${path}`, {
      method,
      headers: { 'content-type': contentType, authorization: `Bearer ${site.token}` },
      body,
      headersTimeout: POLL_TIMEOUT_MS,
      bodyTimeout: POLL_TIMEOUT_MS,
    });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      retryAfter: res.headers['retry-after'],
      ok: () => {
        if (res.statusCode !== 200) throw new Error(`hub answered ${res.statusCode} to ${method} ${path}: ${text.slice(0, 300)}`);
        return text;
      },
    };
  }

  private reportSoon(): void {
    if (this.stopped || this.reportTimer) return;
    this.reportTimer = this.schedule(() => {
      this.reportTimer = undefined;
      this.kick();
    }, REPORT_BATCH_MS);
  }

  private run(task: SiteTask): void {
    if (this.working.has(task.taskId)) return;
    this.working.add(task.taskId);
    const log = this.deps.logger.child({ preheat: task.taskId, image: task.image });
    log.info('pre-heat started');
    void (async () => {
      const delays = this.deps.retryDelaysMs ?? RETRY_DELAYS_MS;
      let job: WarmJob | undefined;
      for (let attempt = 0; ; attempt++) {
        job = await this.deps.warm.run({ images: [task.image], platforms: DEFAULT_PLATFORMS, pin: false, source: 'hub' });
        if (job.state === 'done' || this.stopped || attempt >= delays.length) break;
        log.info({ err: job.images[0]?.error, attempt: attempt + 1 }, 'pre-heat failed; retrying');
        await new Promise((r) => setTimeout(r, delays[attempt]));
      }
      const img = job.images[0]!;
      const result: TaskResult = {
        taskId: task.taskId,
        ok: job.state === 'done',
        bytesFetched: job.images.reduce((n, i) => n + i.bytesFetched, 0),
        bytesTotal: img.bytesTotal,
        ...(img.digest ? { digest: img.digest } : {}),
        ...(img.error ? { error: img.error } : {}),
      };
      log.info({ ok: result.ok, bytesFetched: result.bytesFetched, err: result.error }, 'pre-heat finished');
      this.working.delete(task.taskId);
      this.finished.push(result);
      this.reportSoon();
    })().catch((err: Error) => {
      // The hub hears nothing of this task; it may hand it out again.
      this.working.delete(task.taskId);
      log.error({ err: err.message }, 'pre-heat failed');
    });
  }
}
