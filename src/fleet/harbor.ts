/**
 * @module fleet/harbor — Harbor's P2P preheat provider API ("Dragonfly" provider type) in both
 * generations Harbor has shipped: the current Open API (`/healthy`, `/oapi/v1/jobs`) and the
 * 2.1-era one (`/_ping`, `/preheats`). Payloads and answers are shaped as Harbor's provider
 * driver reads them; Harbor's own pull token in `headers` is never used.
 */
import { ApiError } from '../http/admin-io.js';
import { formatImageReference, parseImageReference } from '../oci/image-ref.js';
import type { FleetJob, FleetJobs } from './jobs.js';

export interface PreheatRequest {
  /** `host/repository:tag` (or `@digest`) taken from the manifest URL. */
  readonly image: string;
  readonly digest?: string;
  readonly url: string;
}

/** `https://harbor.xing.com/v2/library/app/manifests/v1` → `harbor.xing.com/library/app:v1`. */
export function imageFromManifestUrl(url: unknown, field = 'url'): string {
  if (typeof url !== 'string' || url === '')
    throw new ApiError(400, 'INVALID_REQUEST', `field "${field}" is required: the manifest URL, e.g. https://harbor.xing.com/v2/library/app/manifests/v1`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ApiError(400, 'INVALID_REQUEST', `field "${field}" is not a URL: ${url.slice(0, 200)}`);
  }
  const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(decodeURIComponent(u.pathname));
  if (!m)
    throw new ApiError(
      400,
      'INVALID_REQUEST',
      `field "${field}" is not a manifest URL (<registry>/v2/<repository>/manifests/<tag or digest>): ${url.slice(0, 200)}`,
    );
  const ref = m[2]!.startsWith('sha256:') ? `@${m[2]}` : `:${m[2]}`;
  try {
    return formatImageReference(parseImageReference(`${u.host}/${m[1]}${ref}`));
  } catch (err) {
    throw new ApiError(400, 'INVALID_REQUEST', `field "${field}": ${(err as Error).message}`);
  }
}

/** Current Harbor: `{"type":"preheat","args":{"type":"image","url",...,"headers","scope"},"scheduler_cluster_ids"}`. */
export function parseJobRequest(body: Record<string, unknown>): PreheatRequest {
  if (body['type'] !== 'preheat') throw new ApiError(400, 'INVALID_REQUEST', `field "type" must be "preheat" (got ${JSON.stringify(body['type'])})`);
  const args = body['args'];
  if (typeof args !== 'object' || args === null)
    throw new ApiError(400, 'INVALID_REQUEST', 'field "args" is required: {"type":"image","url":"<manifest URL>"}');
  const a = args as Record<string, unknown>;
  if (a['type'] !== undefined && a['type'] !== 'image')
    throw new ApiError(400, 'INVALID_REQUEST', `args.type ${JSON.stringify(a['type'])} is not supported; allowed: image`);
  return { image: imageFromManifestUrl(a['url'], 'args.url'), url: a['url'] as string };
}

/** Harbor 2.1-era: `{"type":"image","url","headers","image","tag","digest"}`. */
export function parsePreheatRequest(body: Record<string, unknown>): PreheatRequest {
  if (body['type'] !== undefined && body['type'] !== 'image')
    throw new ApiError(400, 'INVALID_REQUEST', `field "type" ${JSON.stringify(body['type'])} is not supported; allowed: image`);
  const digest = typeof body['digest'] === 'string' && /^sha256:[a-f0-9]{64}$/.test(body['digest']) ? body['digest'] : undefined;
  return { image: imageFromManifestUrl(body['url']), url: body['url'] as string, ...(digest ? { digest } : {}) };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** One line per site: what Harbor puts in the job log on failure. */
function siteSummary(job: FleetJob): string {
  if (job.error) return job.error;
  return job.sites.map((s) => `${s.site}: ${s.state}${s.error ? ` (${s.error})` : ''}`).join('; ');
}

/** The current provider's job: Harbor renders result.job_states[].results[] as a table (success) or joins the errors (failure). */
export function renderJob(jobs: FleetJobs, job: FleetJob, url: string, now: number): Record<string, unknown> {
  const state = jobs.state(job);
  const done = (s: FleetJob['sites'][number]) => s.state === 'success';
  return {
    id: job.id,
    type: 'preheat',
    state,
    created_at: iso(job.createdAt),
    updated_at: iso(job.finishedAt ?? now),
    result: {
      created_at: iso(job.createdAt),
      updated_at: iso(job.finishedAt ?? now),
      job_states: [
        {
          state,
          error: state === 'FAILURE' ? siteSummary(job) : '',
          results: [
            {
              success_tasks: job.sites.filter(done).map((s) => ({ url, hostname: s.site, ip: '' })),
              failure_tasks: job.sites.filter((s) => s.state === 'failure').map((s) => ({ url, hostname: s.site, ip: '', description: s.error ?? 'failed' })),
              scheduler_cluster_id: 0,
            },
          ],
        },
      ],
    },
  };
}

/** The 2.1-era provider's task: `{ID,startTime,finishTime,Status}` with WAITING | RUNNING | SUCCESS | FAIL. */
export function renderPreheat(jobs: FleetJobs, job: FleetJob): Record<string, unknown> {
  const state = jobs.state(job);
  const started = job.sites.some((s) => s.state !== 'pending');
  const status = state === 'SUCCESS' ? 'SUCCESS' : state === 'FAILURE' ? 'FAIL' : started ? 'RUNNING' : 'WAITING';
  return {
    ID: String(job.id),
    startTime: iso(job.createdAt),
    ...(job.finishedAt !== null ? { finishTime: iso(job.finishedAt) } : {}),
    Status: status,
    errorMsg: state === 'FAILURE' ? siteSummary(job) : '',
  };
}
