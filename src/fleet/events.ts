/**
 * @module fleet/events — push notifications that start a pre-heat: distribution's notification
 * envelope and Harbor's webhook (its default JSON form and its CloudEvents form).
 */
import { ApiError } from '../http/admin-io.js';
import { formatImageReference, parseImageReference } from '../oci/image-ref.js';
import { isIndexType, isManifestType } from '../oci/mediatypes.js';

export interface PushedImage {
  /** `host/repository:tag`, or `@digest` when the push named no tag. */
  readonly image: string;
  readonly digest: string;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function image(host: string, repository: string, tag: unknown, digest: string): string {
  const ref = typeof tag === 'string' && tag !== '' && !tag.startsWith('sha256:') ? `:${tag}` : `@${digest}`;
  return formatImageReference(parseImageReference(`${host}/${repository}${ref}`));
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** distribution: `{"events":[{"action":"push","target":{mediaType,digest,repository,url,tag},"request":{host}}]}`; blob events are skipped. */
function fromEnvelope(events: unknown[]): PushedImage[] {
  const out: PushedImage[] = [];
  for (const raw of events) {
    const e = obj(raw);
    const t = obj(e?.['target']);
    if (!e || !t || e['action'] !== 'push') continue;
    const mediaType = str(t['mediaType']) ?? '';
    const url = str(t['url']) ?? '';
    const isManifest = isManifestType(mediaType) || isIndexType(mediaType) || /\/manifests\//.test(url);
    const digest = str(t['digest']);
    const repository = str(t['repository']);
    if (!isManifest || !digest || !DIGEST.test(digest) || !repository) continue;
    let host = str(obj(e['request'])?.['host']);
    try {
      if (url) host = new URL(url).host;
    } catch {
      // keep request.host
    }
    if (!host) continue;
    out.push({ image: image(host, repository, t['tag'], digest), digest });
  }
  return out;
}

/** Harbor: `event_data` (JSON form, type PUSH_ARTIFACT) or `data` (CloudEvents, type harbor.artifact.pushed). */
function fromHarbor(data: Json | undefined): PushedImage[] {
  const repo = obj(data?.['repository']);
  const full = str(repo?.['repo_full_name']) ?? (repo ? [str(repo['namespace']), str(repo['name'])].filter(Boolean).join('/') : undefined);
  const resources = Array.isArray(data?.['resources']) ? (data['resources'] as unknown[]) : [];
  const out: PushedImage[] = [];
  for (const raw of resources) {
    const r = obj(raw);
    const digest = str(r?.['digest']);
    const url = str(r?.['resource_url']);
    if (!r || !digest || !DIGEST.test(digest) || !url || !full) continue;
    const host = url.slice(0, url.indexOf('/'));
    if (!host) continue;
    out.push({ image: image(host, full, r['tag'], digest), digest });
  }
  return out;
}

/** The manifests a notification says were pushed; other events (pulls, deletes, blobs) give none. */
export function pushedImages(body: Json): PushedImage[] {
  if (Array.isArray(body['events'])) return fromEnvelope(body['events']);
  if (body['type'] === 'PUSH_ARTIFACT') return fromHarbor(obj(body['event_data']));
  if (body['specversion'] !== undefined) return body['type'] === 'harbor.artifact.pushed' ? fromHarbor(obj(body['data'])) : [];
  if (typeof body['type'] === 'string') return [];
  throw new ApiError(
    400,
    'INVALID_REQUEST',
    'not a notification this hub knows: send distribution\'s envelope ({"events":[...]}) or a Harbor webhook (PUSH_ARTIFACT, JSON or CloudEvents)',
  );
}
