/** @module ui/api — the admin API's shapes (/api/v1/...) and the fetch calls the dashboard makes. */

export interface Stats {
  uptimeSeconds: number;
  requests: { hit: number; miss: number; joined: number; stale: number; local: number };
  hitRatio: number;
  bytesServed: { fromCache: number; fromUpstream: number };
  upstreamBytes: Record<string, number>;
  wanBytesSaved: number;
  fillsInFlight: number;
  store: { bytes: number; maxsize: number; blobs: number };
}

export interface HistoryPoint {
  t: number | string;
  hit: number;
  miss: number;
  joined: number;
  stale: number;
  bytesFromCache: number;
  bytesFromUpstream: number;
}

export interface History {
  intervalSeconds: number;
  points: HistoryPoint[];
}

export interface UpstreamState {
  name: string;
  remoteurl: string;
  state: 'up' | 'down';
  since?: number | string | null;
  lastError?: string | null;
  consecutiveFailures?: number;
}

export interface CachedImage {
  upstream: string;
  repository: string;
  tag?: string | null;
  digest: string;
  mediaType?: string;
  size: number;
  platforms?: string[];
  lastPull?: number | string | null;
  pinned?: boolean;
  /** The verify: policy's last finding: verified, unsigned, invalid or not checked. */
  signature?: string;
}

export interface WarmImage {
  ref: string;
  state: string;
  bytesTotal?: number;
  bytesDone?: number;
  blobsTotal?: number;
  blobsDone?: number;
  error?: string | null;
}

export interface WarmJob {
  id: string;
  state: string;
  createdAt?: number | string;
  images: WarmImage[];
}

export interface WarmRequest {
  images: string[];
  platforms: string[];
  allPlatforms: boolean;
  pin: boolean;
}

export interface QueueItem {
  id: string | number;
  kind: string;
  repository: string;
  digest?: string | null;
  tag?: string | null;
  state: string;
  attempts: number;
  ageSeconds: number;
  lastError?: string | null;
}

export interface BundleImport {
  id: number;
  at: number;
  source: string;
  images: string[];
  blobsStored: number;
  blobsSkipped: number;
  blobsRefused: number;
  problems: string[];
}

export interface SiteInfo {
  name: string;
  state: 'up' | 'stale';
  lastReport: string;
  version: string;
  intervalMs: number;
  store: { bytes: number; limit: number; blobs: number };
  images: number;
  wanBytes: Record<string, number>;
  upstreams: { name: string; state: string; lastError: string | null }[];
  errors: string[];
  jobs: { id: string; state: string; images: string[]; bytesFetched: number; finishedAt: number | null }[];
}

export interface FleetJob {
  id: number;
  image: string;
  source: string;
  state: 'PENDING' | 'SUCCESS' | 'FAILURE';
  createdAt: number;
  error: string | null;
  sites: { site: string; state: string; error: string | null; bytesFetched: number }[];
}

/** An API call that failed; `status` is 0 when berth could not be reached at all. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The API lives beside /ui/ on the same origin, so paths are absolute and need no configuration. */
async function call<T>(path: string, init?: RequestInit): Promise<T> {
  return (await (await answered(path, init)).json()) as T;
}

/** One page of a paged list, and the path of the next from its `Link: <...>; rel="next"` header. */
async function callPage<T>(path: string, init?: RequestInit): Promise<{ items: T[]; next?: string }> {
  const res = await answered(path, init);
  const next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('Link') ?? '')?.[1];
  return { items: (await res.json()) as T[], ...(next !== undefined ? { next } : {}) };
}

async function answered(path: string, init?: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers: { Accept: 'application/json', ...(init?.headers ?? {}) } });
  } catch {
    throw new ApiError('berth is not reachable', 0);
  }
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { errors?: { message?: unknown }[]; message?: unknown };
      const message = body.errors?.[0]?.message ?? body.message;
      if (typeof message === 'string') detail = message;
    } catch {
      /* not JSON: keep the status line */
    }
    throw new ApiError(detail, res.status);
  }
  return res;
}

/** Sites shown per page. */
export const SITES_PAGE = 100;

export const api = {
  stats: () => call<Stats>('/api/v1/stats'),
  history: () => call<History>('/api/v1/stats/history'),
  upstreams: () => call<UpstreamState[]>('/api/v1/upstreams'),
  images: (q: string) => call<CachedImage[]>(`/api/v1/images${q ? `?q=${encodeURIComponent(q)}` : ''}`),
  queue: () => call<QueueItem[]>('/api/v1/queue'),
  bundles: (offset: number) => call<{ total: number; items: BundleImport[] }>(`/api/v1/bundles?limit=50&offset=${offset}`),
  startWarm: (body: WarmRequest) =>
    call<{ id: string }>('/api/v1/warm', { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
  /** The hub's endpoints take its token (or the admin credentials the browser already sends). */
  // One page of sites at a time: `page` is the path a previous page's Link named (undefined: the first).
  sites: (token: string, page: string | undefined) =>
    callPage<SiteInfo>(page ?? `/api/v1/sites?limit=${SITES_PAGE}`, token ? { headers: { Authorization: `Bearer ${token}` } } : undefined),
  sitesSummary: (token: string) =>
    call<{ total: number; up: number; stale: number }>('/api/v1/sites/summary', token ? { headers: { Authorization: `Bearer ${token}` } } : undefined),
  fleetJobs: (token: string) => call<FleetJob[]>('/api/v1/fleet/jobs', token ? { headers: { Authorization: `Bearer ${token}` } } : undefined),
  warmJob: (id: string) => call<WarmJob>(`/api/v1/warm/${encodeURIComponent(id)}`),
};
