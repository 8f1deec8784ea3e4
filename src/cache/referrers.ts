/** @module cache/referrers — the referrers API: manifests whose subject is a digest, from berth's record and the upstream's answer. */
import type { Logger } from 'pino';
import { parseDigest } from '../oci/digest.js';
import { MAX_MANIFEST_SIZE, parseManifest, type Descriptor } from '../oci/manifest.js';
import { isNotFound, type BlobStore } from '../storage/blobs.js';
import type { ManifestRecords } from '../ports/repository-index.js';
import type { Target } from './target.js';

export interface ReferrersDeps {
  readonly blobs: BlobStore;
  readonly repos: ManifestRecords;
  readonly logger: Logger;
}

/**
 * Descriptors of the referrers of `subject` in the repository, filtered by artifactType when
 * given. Local manifests (pushed here, or pulled through) come with the annotations and
 * artifactType read from their own bytes; an upstream that implements the API adds its own.
 */
export async function listReferrers(deps: ReferrersDeps, target: Target, subject: string, artifactType: string | undefined): Promise<Descriptor[]> {
  parseDigest(subject);
  const found = new Map<string, Descriptor>();
  for (const row of await deps.repos.referrers(target.key, target.repository, subject)) {
    const body = await deps.blobs.readAll(row.digest).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!body) continue;
    let parsed;
    try {
      parsed = parseManifest(body, row.mediaType);
    } catch (err) {
      // A manifest stored before today's limits must not break the listing for every other one.
      deps.logger.warn({ digest: row.digest, err: (err as Error).message }, 'stored referrer manifest no longer parses; left out of the referrers list');
      continue;
    }
    found.set(row.digest, {
      mediaType: row.mediaType,
      digest: row.digest,
      size: row.size,
      ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
      ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
    });
  }
  for (const d of await upstreamReferrers(deps, target, subject)) if (!found.has(d.digest)) found.set(d.digest, d);
  const all = [...found.values()];
  return artifactType === undefined ? all : all.filter((d) => d.artifactType === artifactType);
}

/** The upstream's referrers index; a registry without the API (or out of reach) adds nothing. */
async function upstreamReferrers(deps: ReferrersDeps, target: Target, subject: string): Promise<Descriptor[]> {
  const upstream = target.upstream;
  if (!upstream) return [];
  try {
    const res = await upstream.client.send({ method: 'GET', repository: target.repository, path: `referrers/${subject}` });
    if (res.status !== 200 || Number(res.headers['content-length'] ?? 0) > MAX_MANIFEST_SIZE) {
      await res.body.dump();
      return [];
    }
    const text = await res.body.text();
    if (text.length > MAX_MANIFEST_SIZE) return [];
    const index = parseManifest(Buffer.from(text));
    return [...index.manifests];
  } catch (err) {
    deps.logger.debug({ upstream: upstream.config.name, subject, err: (err as Error).message }, 'upstream referrers not available; answering from berth alone');
    return [];
  }
}
