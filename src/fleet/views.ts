/**
 * @module fleet/views — the hub's paged views: `GET /api/v1/sites` and `GET /api/v1/fleet/jobs` one page
 * at a time (`limit`, `cursor`, filters), their summaries, and strict query parameters (400 naming the one at fault).
 */
import { ApiError } from '../http/admin-io.js';
import type { FleetJob, FleetJobs, JobState, SitePartState } from './jobs.js';
import type { SiteBook, SiteState } from './sites.js';

export interface View {
  readonly body: unknown;
  /** The next page's path and query, sent as `Link: <...>; rel="next"`. */
  readonly next?: string;
}

const SITE_STATES: readonly SiteState[] = ['up', 'stale'];
const JOB_STATES: readonly JobState[] = ['PENDING', 'SUCCESS', 'FAILURE'];

function bad(param: string, why: string): ApiError {
  return new ApiError(400, 'INVALID_REQUEST', `query parameter "${param}" ${why}`);
}

/** The parameters of a view, each checked; anything else named is refused. */
function params(url: URL, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of url.searchParams) {
    if (!allowed.includes(key)) throw bad(key, `is not known here; allowed: ${allowed.join(', ')}`);
    if (out.has(key)) throw bad(key, 'is given twice');
    out.set(key, value);
  }
  return out;
}

function limitOf(p: Map<string, string>, fallback: number, max: number): number {
  const raw = p.get('limit');
  if (raw === undefined) return fallback;
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1 || Number(raw) > max)
    throw bad('limit', `must be a whole number from 1 to ${max} (got ${JSON.stringify(raw.slice(0, 20))})`);
  return Number(raw);
}

function oneOf<T extends string>(p: Map<string, string>, key: string, values: readonly T[]): T | undefined {
  const raw = p.get(key);
  if (raw === undefined) return undefined;
  if (!(values as readonly string[]).includes(raw)) throw bad(key, `must be one of ${values.join(', ')} (got ${JSON.stringify(raw.slice(0, 20))})`);
  return raw as T;
}

function prefixOf(p: Map<string, string>): string | undefined {
  const raw = p.get('prefix');
  if (raw !== undefined && (raw === '' || raw.length > 256)) throw bad('prefix', 'must be 1 to 256 characters');
  return raw;
}

function nextLink(path: string, p: Map<string, string>, cursor: string): string {
  const q = new URLSearchParams([...p].filter(([k]) => k !== 'cursor'));
  q.set('cursor', cursor);
  return `${path}?${q}`;
}

/** `GET /api/v1/sites`: each site's last report in name order, 500 a page unless `limit` says otherwise. */
export function sitesView(book: SiteBook, url: URL): View {
  const p = params(url, ['limit', 'cursor', 'state', 'prefix']);
  const cursor = p.get('cursor');
  if (cursor !== undefined && (cursor === '' || cursor.length > 256)) throw bad('cursor', 'must be a site name from a previous page');
  const state = oneOf(p, 'state', SITE_STATES);
  const prefix = prefixOf(p);
  const page = book.page({ limit: limitOf(p, 500, 5_000), ...(cursor ? { after: cursor } : {}), ...(state ? { state } : {}), ...(prefix ? { prefix } : {}) });
  return { body: page.items, ...(page.next !== undefined ? { next: nextLink(url.pathname, p, page.next) } : {}) };
}

/** Parts listed per job in the jobs view; all of them are in Harbor's view of the job. */
const PARTS_LISTED = 20;

/** One job in a list: its parts counted by state and the first few listed, failed and unfinished ones first. */
function jobLine(jobs: FleetJobs, job: FleetJob): Record<string, unknown> {
  const { sites, ...rest } = job;
  const shown =
    sites.length <= PARTS_LISTED
      ? sites
      : [
          ...sites.filter((p) => p.state === 'failure'),
          ...sites.filter((p) => p.state === 'pending' || p.state === 'running'),
          ...sites.filter((p) => p.state === 'success'),
        ].slice(0, PARTS_LISTED);
  return { ...rest, state: jobs.state(job), siteCount: sites.length, parts: jobs.counts(job), sites: shown };
}

/** `GET /api/v1/fleet/jobs`: newest first, 100 a page unless `limit` says otherwise. */
export function jobsView(jobs: FleetJobs, url: URL): View {
  const p = params(url, ['limit', 'cursor', 'state', 'prefix']);
  const cursor = p.get('cursor');
  if (cursor !== undefined && !/^\d{1,16}$/.test(cursor)) throw bad('cursor', 'must be a job id from a previous page');
  const state = oneOf(p, 'state', JOB_STATES);
  const prefix = prefixOf(p);
  const page = jobs.page({
    limit: limitOf(p, 100, 1_000),
    ...(cursor ? { before: Number(cursor) } : {}),
    ...(state ? { state } : {}),
    ...(prefix ? { prefix } : {}),
  });
  return {
    body: page.items.map((j) => jobLine(jobs, j)),
    ...(page.next !== undefined ? { next: nextLink(url.pathname, p, String(page.next)) } : {}),
  };
}

const PART_STATES: readonly SitePartState[] = ['pending', 'running', 'success', 'failure'];

/** `GET /api/v1/fleet/jobs/<id>`: one job with its parts in site order, 1000 a page unless `limit` says otherwise. */
export function jobView(jobs: FleetJobs, job: FleetJob, url: URL): View {
  const p = params(url, ['limit', 'cursor', 'state']);
  const cursor = p.get('cursor');
  if (cursor !== undefined && (cursor === '' || cursor.length > 256)) throw bad('cursor', 'must be a site name from a previous page');
  const state = oneOf(p, 'state', PART_STATES);
  const limit = limitOf(p, 1_000, 5_000);
  const { sites, ...rest } = job;
  const chosen = sites.filter((s) => (cursor === undefined || s.site > cursor) && (state === undefined || s.state === state));
  chosen.sort((a, b) => (a.site < b.site ? -1 : 1));
  const page = chosen.slice(0, limit);
  return {
    body: { ...rest, state: jobs.state(job), siteCount: sites.length, parts: jobs.counts(job), sites: page },
    ...(chosen.length > limit ? { next: nextLink(url.pathname, p, page[page.length - 1]!.site) } : {}),
  };
}

/** `GET /api/v1/sites/summary` and `GET /api/v1/fleet/jobs/summary`: counts by state, a few bytes at any size. */
export function summaryView(what: 'sites' | 'jobs', book: SiteBook, jobs: FleetJobs, url: URL): View {
  params(url, []);
  return { body: what === 'sites' ? book.summary() : jobs.summary() };
}
