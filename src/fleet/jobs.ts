/**
 * @module fleet/jobs — pre-heat jobs on the hub: one image to a set of sites, each site's part
 * tracked to success or failure. Open parts are indexed by site, so a poll costs its own tasks,
 * and every change is collected for the hub state (ports/hub-state.ts) written after each request.
 */
import { setImmediate as yieldToPolls } from 'node:timers/promises';
import type { HubWrite, PartState, StoredJob, StoredPart } from '../ports/hub-state.js';
import type { SiteBook } from './sites.js';
import type { SiteTask, TaskResult } from './hub-protocol.js';

export type SitePartState = PartState;
export type JobState = 'PENDING' | 'SUCCESS' | 'FAILURE';

/** The stored record with its progress fields writable: the hub updates them as sites report. */
type Tracking<T, K extends keyof T> = Omit<T, K> & { -readonly [P in K]: T[P] };

/** One site's part of a job, as ports/hub-state.ts stores it. */
export type SitePart = Tracking<StoredPart, 'state' | 'error' | 'digest' | 'bytesFetched' | 'bytesTotal' | 'finishedAt'>;

/** A job as ports/hub-state.ts stores it, with its sites' parts. */
export type FleetJob = Tracking<StoredJob, 'finishedAt' | 'error'> & { readonly sites: SitePart[] };

export interface CreateJob {
  readonly image: string;
  readonly url?: string;
  readonly digest?: string;
  readonly source: string;
  readonly selector?: string;
  readonly matches: (site: string) => boolean;
}

export type PartCounts = Record<SitePartState, number>;

/** Finished jobs kept; unfinished ones are always kept. */
const MAX_JOBS = 1000;
/**
 * Parts made between two yields while a job fans out, so polls are answered meanwhile (a few ms of
 * work). Jobs fan out one at a time: a burst of jobs would otherwise run a slice each between two
 * turns of the event loop, and a poll would wait behind all of them.
 */
const FAN_OUT_SLICE = 250;

interface Tracked {
  readonly job: FleetJob;
  readonly parts: Map<string, SitePart>;
  readonly counts: PartCounts;
  /** Still fanning out: not finished whatever its parts say. */
  creating: boolean;
}

export class FleetJobs {
  /** In id order (ids only grow). */
  private readonly jobs = new Map<number, Tracked>();
  /** Pending and running parts by site, then job id. */
  private readonly open = new Map<string, Map<number, SitePart>>();
  private readonly dirtyJobs = new Set<number>();
  private readonly dirtyParts = new Map<SitePart, number>();
  /** New jobs' pending parts, by job: written as one list of site names each (a fan-out is one row write per job). */
  private readonly freshParts = new Map<number, string[]>();
  private readonly deleted: number[] = [];
  /** The fan-out under way: the next job's starts after it. */
  private fanning: Promise<void> = Promise.resolve();

  constructor(
    private readonly book: SiteBook,
    private readonly now: () => number,
    private readonly nextId: (floor: number) => Promise<number>,
  ) {}

  /** Jobs as a previous run of the hub left them; the parts are taken over, not copied (a restart loads 100k of them). */
  restore(jobs: ReadonlyArray<StoredJob & { readonly parts: readonly StoredPart[] }>): void {
    for (const s of jobs) {
      const { parts, ...rest } = s;
      const job: FleetJob = { ...rest, sites: parts as SitePart[] };
      this.track(job, false);
    }
  }

  /**
   * A new job for every matching site; with `digest`, an unfinished or successful job for the
   * same digest and sites is returned instead (`duplicate`). Fans out in slices, yielding between.
   */
  async create(req: CreateJob): Promise<{ job: FleetJob; duplicate: boolean }> {
    const selector = req.selector ?? '';
    const same = () => (req.digest ? this.findSame(req.digest, selector) : undefined);
    let dup = same();
    if (dup) return { job: dup, duplicate: true };
    // Ids stay unique across hub restarts, so Harbor never reads another job's status by an old id.
    const id = await this.nextId(this.now());
    dup = same();
    if (dup) return { job: dup, duplicate: true };
    const at = this.now();
    const job: FleetJob = {
      id,
      image: req.image,
      url: req.url ?? req.image,
      digest: req.digest ?? null,
      source: req.source,
      selector,
      createdAt: at,
      finishedAt: null,
      error: null,
      sites: [],
    };
    const t = this.track(job, true);
    const turn = this.fanning.then(() => this.fanOut(t, req, at));
    this.fanning = turn.catch(() => undefined);
    await turn;
    if (job.sites.length === 0)
      job.error = selector
        ? `no site matches ${JSON.stringify(selector)}; known sites: ${this.book.names().slice(0, 20).join(', ') || 'none'}`
        : 'no site has reported to this hub yet';
    t.creating = false;
    this.dirtyJobs.add(id);
    this.settle(t);
    this.prune();
    return { job, duplicate: false };
  }

  /** One part per matching site, in slices with polls answered between. */
  private async fanOut(t: Tracked, req: CreateJob, at: number): Promise<void> {
    const { job } = t;
    const id = job.id;
    const names = this.book.names().filter(req.matches);
    for (let i = 0; i < names.length; i += FAN_OUT_SLICE) {
      await yieldToPolls();
      for (const site of names.slice(i, i + FAN_OUT_SLICE)) {
        const s = this.book.stateOf(site);
        const stale = s?.state === 'stale';
        const part: SitePart = {
          site,
          state: stale ? 'failure' : 'pending',
          error: stale ? `site is stale: no report since ${new Date(s.at).toISOString()}` : null,
          digest: null,
          bytesFetched: 0,
          bytesTotal: 0,
          finishedAt: stale ? at : null,
        };
        job.sites.push(part);
        this.index(t, part);
        if (stale) this.dirtyParts.set(part, id);
        else this.freshOf(id).push(site);
      }
    }
  }

  get(id: number): FleetJob | undefined {
    return this.jobs.get(id)?.job;
  }

  /** Newest first, from before `before`, filtered, at most `limit`; `next` only when an older job matches too. */
  page(q: { limit: number; before?: number; state?: JobState; prefix?: string }): { items: FleetJob[]; next?: number } {
    const ids = [...this.jobs.keys()];
    const items: FleetJob[] = [];
    for (let i = ids.length - 1; i >= 0; i--) {
      const t = this.jobs.get(ids[i]!)!;
      if (q.before !== undefined && t.job.id >= q.before) continue;
      if (q.prefix !== undefined && !t.job.image.startsWith(q.prefix)) continue;
      if (q.state !== undefined && this.state(t.job) !== q.state) continue;
      if (items.length === q.limit) return { items, next: items[items.length - 1]!.id };
      items.push(t.job);
    }
    return { items };
  }

  summary(): Record<JobState, number> & { total: number } {
    const out = { total: this.jobs.size, PENDING: 0, SUCCESS: 0, FAILURE: 0 };
    for (const t of this.jobs.values()) out[this.stateOf(t)]++;
    return out;
  }

  counts(job: FleetJob): PartCounts {
    return { ...this.jobs.get(job.id)!.counts };
  }

  state(job: FleetJob): JobState {
    const t = this.jobs.get(job.id);
    return t ? this.stateOf(t) : 'FAILURE';
  }

  /**
   * The tasks to hand a polling site: pending and running ones it does not list as working (new,
   * or it restarted); a pending one it lists (the hub restarted and forgot it handed it out) just runs.
   */
  tasksFor(site: string, working: readonly string[]): SiteTask[] {
    const out: SiteTask[] = [];
    const open = this.open.get(site);
    if (!open) return out;
    const busy = new Set(working);
    for (const [id, part] of open) {
      const taskId = `${id}/${site}`;
      const t = this.jobs.get(id)!;
      if (part.state === 'pending') this.move(t, part, 'running');
      if (!busy.has(taskId)) out.push({ taskId, image: t.job.image });
    }
    return out;
  }

  /** Whether tasksFor would hand the site anything (it changes nothing). */
  hasTasksFor(site: string, working: readonly string[]): boolean {
    const open = this.open.get(site);
    if (!open || open.size === 0) return false;
    const busy = new Set(working);
    for (const id of open.keys()) if (!busy.has(`${id}/${site}`)) return true;
    return false;
  }

  /** Only a site's own report finishes its part. */
  complete(site: string, results: readonly TaskResult[]): void {
    for (const r of results) {
      const [id, name] = splitTaskId(r.taskId);
      if (name !== site) continue;
      const t = this.jobs.get(id);
      const part = t?.parts.get(site);
      if (!t || !part || part.state === 'success' || part.state === 'failure') continue;
      part.error = r.ok ? null : String(r.error ?? 'failed').slice(0, 500);
      part.digest = typeof r.digest === 'string' ? r.digest : null;
      part.bytesFetched = Number(r.bytesFetched) || 0;
      part.bytesTotal = Number(r.bytesTotal) || 0;
      part.finishedAt = this.now();
      this.move(t, part, r.ok ? 'success' : 'failure');
      this.settle(t);
    }
  }

  /** Fails the open parts of sites that fell silent (stopped polling for three intervals). */
  sweep(): void {
    for (const [site, open] of this.open) {
      if (open.size === 0) continue;
      const s = this.book.stateOf(site);
      if (s?.state !== 'stale') continue;
      for (const [id, part] of [...open]) {
        const t = this.jobs.get(id)!;
        part.error = `site went silent before finishing: no poll since ${new Date(s.at).toISOString()}`;
        part.finishedAt = this.now();
        this.move(t, part, 'failure');
        this.settle(t);
      }
    }
  }

  /** What changed since the last call, for the hub state. */
  takeWrites(): HubWrite {
    const jobs = [...this.dirtyJobs].flatMap((id) => {
      const t = this.jobs.get(id);
      return t ? [stored(t.job)] : [];
    });
    const parts = [...this.dirtyParts].filter(([, id]) => this.jobs.has(id)).map(([part, job]) => ({ job, part: { ...part } }));
    const pendingParts = [...this.freshParts].filter(([id, sites]) => sites.length > 0 && this.jobs.has(id)).map(([job, sites]) => ({ job, sites }));
    const deleteJobs = this.deleted.splice(0);
    this.dirtyJobs.clear();
    this.dirtyParts.clear();
    this.freshParts.clear();
    return { jobs, pendingParts, parts, deleteJobs };
  }

  private stateOf(t: Tracked): JobState {
    if (t.job.error) return 'FAILURE';
    if (t.creating || t.counts.pending + t.counts.running > 0) return 'PENDING';
    return t.counts.failure > 0 ? 'FAILURE' : 'SUCCESS';
  }

  private findSame(digest: string, selector: string): FleetJob | undefined {
    const ids = [...this.jobs.keys()];
    for (let i = ids.length - 1; i >= 0; i--) {
      const t = this.jobs.get(ids[i]!)!;
      if (t.job.digest === digest && t.job.selector === selector && this.stateOf(t) !== 'FAILURE') return t.job;
    }
    return undefined;
  }

  private track(job: FleetJob, creating: boolean): Tracked {
    const t: Tracked = { job, parts: new Map(), counts: { pending: 0, running: 0, success: 0, failure: 0 }, creating };
    this.jobs.set(job.id, t);
    for (const part of job.sites) {
      t.parts.set(part.site, part);
      t.counts[part.state]++;
      if (part.state === 'pending' || part.state === 'running') this.openSite(part.site).set(job.id, part);
    }
    return t;
  }

  private index(t: Tracked, part: SitePart): void {
    t.parts.set(part.site, part);
    t.counts[part.state]++;
    if (part.state === 'pending' || part.state === 'running') this.openSite(part.site).set(t.job.id, part);
  }

  /** Looked up each time: a write taken in the middle of a fan-out starts a new list. */
  private freshOf(id: number): string[] {
    let list = this.freshParts.get(id);
    if (!list) this.freshParts.set(id, (list = []));
    return list;
  }

  private openSite(site: string): Map<number, SitePart> {
    let m = this.open.get(site);
    if (!m) this.open.set(site, (m = new Map()));
    return m;
  }

  private move(t: Tracked, part: SitePart, to: SitePartState): void {
    t.counts[part.state]--;
    t.counts[to]++;
    part.state = to;
    if (to === 'success' || to === 'failure') this.open.get(part.site)?.delete(t.job.id);
    // Running is not written: after a restart a running part reads as pending, and a site that
    // still works on it lists it in `working`, so it is not handed out twice (tasksFor).
    if (to !== 'running') this.dirtyParts.set(part, t.job.id);
  }

  /** A job whose parts are all done is finished. */
  private settle(t: Tracked): void {
    if (t.job.finishedAt === null && this.stateOf(t) !== 'PENDING') {
      t.job.finishedAt = Math.max(t.job.createdAt, ...t.job.sites.map((s) => s.finishedAt ?? 0));
      this.dirtyJobs.add(t.job.id);
    }
  }

  private prune(): void {
    let excess = this.jobs.size - MAX_JOBS;
    for (const [id, t] of this.jobs) {
      if (excess <= 0) break;
      if (t.job.finishedAt === null) continue;
      this.jobs.delete(id);
      this.deleted.push(id);
      excess--;
    }
  }
}

function stored(job: FleetJob): StoredJob {
  const { sites: _sites, ...rest } = job;
  return rest;
}

function splitTaskId(taskId: string): [number, string] {
  const slash = taskId.indexOf('/');
  return [Number(taskId.slice(0, slash)), taskId.slice(slash + 1)];
}
