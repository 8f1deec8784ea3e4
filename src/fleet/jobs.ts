/** @module fleet/jobs — pre-heat jobs on the hub: one image to a set of sites, each site's part tracked to success or failure. */
import type { SiteBook } from './sites.js';
import type { SiteTask, TaskResult } from './hub-protocol.js';

export type SitePartState = 'pending' | 'running' | 'success' | 'failure';
export type JobState = 'PENDING' | 'SUCCESS' | 'FAILURE';

export interface SitePart {
  readonly site: string;
  state: SitePartState;
  error: string | null;
  digest: string | null;
  bytesFetched: number;
  bytesTotal: number;
  finishedAt: number | null;
}

export interface FleetJob {
  readonly id: number;
  /** `[registry/]repository[:tag|@digest]` as sites route it. */
  readonly image: string;
  /** The manifest digest, when the caller named it (duplicates are found by it). */
  readonly digest: string | null;
  /** harbor (current provider API), harbor-v1 (2.1-era), event, api. */
  readonly source: string;
  readonly selector: string;
  readonly createdAt: number;
  finishedAt: number | null;
  readonly sites: SitePart[];
  /** Why the job failed as a whole (e.g. no site matched). */
  error: string | null;
}

export interface CreateJob {
  readonly image: string;
  readonly digest?: string;
  readonly source: string;
  readonly selector?: string;
  readonly matches: (site: string) => boolean;
}

/** Finished jobs kept; unfinished ones are always kept. */
const MAX_JOBS = 1000;

export class FleetJobs {
  private readonly jobs = new Map<number, FleetJob>();
  private nextId: number;

  constructor(
    private readonly book: SiteBook,
    private readonly now: () => number,
  ) {
    // Ids stay unique across hub restarts, so Harbor never reads another job's status by an old id.
    this.nextId = now();
  }

  /**
   * A new job for every matching site; with `digest`, an unfinished or successful job for the
   * same digest and sites is returned instead (`duplicate`).
   */
  create(req: CreateJob): { job: FleetJob; duplicate: boolean } {
    const selector = req.selector ?? '';
    if (req.digest) {
      const same = [...this.jobs.values()].reverse().find((j) => j.digest === req.digest && j.selector === selector && this.state(j) !== 'FAILURE');
      if (same) return { job: same, duplicate: true };
    }
    const at = this.now();
    const job: FleetJob = {
      id: this.nextId++,
      image: req.image,
      digest: req.digest ?? null,
      source: req.source,
      selector,
      createdAt: at,
      finishedAt: null,
      error: null,
      sites: this.book
        .names()
        .filter(req.matches)
        .map((site) => {
          const s = this.book.stateOf(site);
          const stale = s?.state === 'stale';
          return {
            site,
            state: stale ? 'failure' : 'pending',
            error: stale ? `site is stale: no report since ${new Date(s.at).toISOString()}` : null,
            digest: null,
            bytesFetched: 0,
            bytesTotal: 0,
            finishedAt: stale ? at : null,
          };
        }),
    };
    if (job.sites.length === 0)
      job.error = selector
        ? `no site matches ${JSON.stringify(selector)}; known sites: ${this.book.names().join(', ') || 'none'}`
        : 'no site has reported to this hub yet';
    this.jobs.set(job.id, job);
    this.settle(job);
    this.prune();
    return { job, duplicate: false };
  }

  get(id: number): FleetJob | undefined {
    const job = this.jobs.get(id);
    if (job) this.settle(job);
    return job;
  }

  /** Newest first. */
  list(): FleetJob[] {
    const all = [...this.jobs.values()].reverse();
    all.forEach((j) => this.settle(j));
    return all;
  }

  state(job: FleetJob): JobState {
    if (job.error) return 'FAILURE';
    if (job.sites.some((s) => s.state === 'pending' || s.state === 'running')) return 'PENDING';
    return job.sites.every((s) => s.state === 'success') ? 'SUCCESS' : 'FAILURE';
  }

  /** The tasks to hand a polling site: new ones, and running ones it no longer lists as working (it restarted). */
  tasksFor(site: string, working: readonly string[]): SiteTask[] {
    const out: SiteTask[] = [];
    for (const job of this.jobs.values()) {
      const part = job.sites.find((s) => s.site === site);
      if (!part) continue;
      const taskId = `${job.id}/${site}`;
      if (part.state === 'pending' || (part.state === 'running' && !working.includes(taskId))) {
        part.state = 'running';
        out.push({ taskId, image: job.image });
      }
    }
    return out;
  }

  complete(site: string, results: readonly TaskResult[]): void {
    for (const r of results) {
      const [id, name] = splitTaskId(r.taskId);
      if (name !== site) continue;
      const job = this.jobs.get(id);
      const part = job?.sites.find((s) => s.site === site);
      if (!job || !part || part.state === 'success' || part.state === 'failure') continue;
      part.state = r.ok ? 'success' : 'failure';
      part.error = r.ok ? null : (r.error ?? 'failed').slice(0, 500);
      part.digest = r.digest ?? null;
      part.bytesFetched = r.bytesFetched;
      part.bytesTotal = r.bytesTotal;
      part.finishedAt = this.now();
      this.settle(job);
    }
  }

  /** A site that went stale with work outstanding fails its part; a job whose parts are all done is finished. */
  private settle(job: FleetJob): void {
    for (const part of job.sites) {
      if (part.state !== 'pending' && part.state !== 'running') continue;
      const s = this.book.stateOf(part.site);
      if (s?.state === 'stale') {
        part.state = 'failure';
        part.error = `site went stale before finishing: no report since ${new Date(s.at).toISOString()}`;
        part.finishedAt = this.now();
      }
    }
    if (job.finishedAt === null && this.state(job) !== 'PENDING') {
      job.finishedAt = Math.max(job.createdAt, ...job.sites.map((s) => s.finishedAt ?? 0));
    }
  }

  private prune(): void {
    const finished = [...this.jobs.values()].filter((j) => j.finishedAt !== null);
    for (const j of finished.slice(0, Math.max(0, this.jobs.size - MAX_JOBS))) this.jobs.delete(j.id);
  }
}

function splitTaskId(taskId: string): [number, string] {
  const slash = taskId.indexOf('/');
  return [Number(taskId.slice(0, slash)), taskId.slice(slash + 1)];
}
