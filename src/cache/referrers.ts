/** @module cache/referrers — the referrers API: one bounded page of the manifests whose subject is a digest, from berth's index and the upstream's answer. */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isDigest, parseDigest } from '../oci/digest.js';
import { digestInvalid } from '../oci/error-catalogue.js';
import { MAX_ANNOTATION_BYTES, parseManifest, type Descriptor, type ParsedManifest } from '../oci/manifest.js';
import { OCI_INDEX } from '../oci/mediatypes.js';
import { isNotFound, type BlobStore } from '../storage/blob-files.js';
import type { ManifestRecords, NewManifest, ReferrerRecord } from '../ports/repository-index.js';
import type { Target } from '../upstream/target.js';
import { getReferrers } from '../upstream/registry-api.js';

/** Most descriptors on one page, the ceiling tags and catalog pages have too. */
export const REFERRERS_PAGE_COUNT = 1000;
/**
 * Most bytes of one page's JSON. A page always holds at least one entry, and MAX_ANNOTATION_BYTES
 * keeps any entry far below this, so every referrer fits on some page.
 */
export const REFERRERS_PAGE_BYTES = 1024 * 1024;
/** Index rows read at a time: a page stops reading once it is full. */
const BATCH = 16;

export interface ReferrersDeps {
  readonly blobs: BlobStore;
  readonly repos: ManifestRecords;
  readonly logger: Logger;
}

export interface ReferrersRequest {
  readonly artifactType?: string;
  /** The cursor from the previous page's Link: the last digest it listed. */
  readonly last?: string;
}

export interface ReferrersPage {
  /**
   * The image index as JSON, in pieces: the annotations stay the buffers the index returned, so
   * a page costs no string copies (which a busy worker's small young generation would promote).
   */
  readonly body: readonly Uint8Array[];
  /** Bytes of the body. */
  readonly length: number;
  /** When more follow: the cursor of the next page. */
  readonly next?: string;
}

/** The index row of a verified manifest: what it references, and its referrer fields when it has a subject. */
export function manifestRow(digest: string, size: number, parsed: ParsedManifest): NewManifest {
  return {
    digest,
    mediaType: parsed.mediaType,
    size,
    subject: parsed.subject?.digest,
    artifactType: parsed.artifactType,
    annotations: parsed.subject ? referrerAnnotations(parsed.annotations) : undefined,
    children: [...parsed.blobs, ...parsed.manifests].map((d) => d.digest),
  };
}

/**
 * The annotations recorded with a referrer (see NewManifest.annotations). A push over
 * MAX_ANNOTATION_BYTES is refused before this; a pulled manifest over it is listed without them.
 */
export function referrerAnnotations(annotations: Descriptor['annotations']): string {
  if (!annotations) return '';
  const text = JSON.stringify(annotations);
  return Buffer.byteLength(text) > MAX_ANNOTATION_BYTES ? '' : text;
}

/**
 * One page of the referrers of `subject` in the repository, in digest order from after `last`,
 * filtered by artifactType when given. Local manifests are listed from the index rows alone; an
 * upstream that implements the API adds its own. The page ends at REFERRERS_PAGE_COUNT entries
 * or REFERRERS_PAGE_BYTES of JSON, whichever comes first.
 */
export async function listReferrers(deps: ReferrersDeps, target: Target, subject: string, req: ReferrersRequest = {}): Promise<ReferrersPage> {
  parseDigest(subject);
  const { artifactType, last } = req;
  if (last !== undefined && !isDigest(last)) {
    throw digestInvalid(`query parameter last must be a digest (as in the previous page's Link), got "${last.slice(0, 100)}"`, { parameter: 'last' });
  }
  const after = last ?? '';
  const remote = (await upstreamReferrers(deps, target, subject))
    .filter((d) => d.digest > after && (artifactType === undefined || d.artifactType === artifactType))
    .sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  const local = indexed(deps, target, subject, { after: last, artifactType });
  const body: Uint8Array[] = [INDEX_HEAD];
  let bytes = INDEX_HEAD.length + INDEX_TAIL.length;
  let count = 0;
  let listed: string | undefined;
  let row = await local.next();
  let u = 0;
  for (;;) {
    const mine = row.done ? undefined : row.value;
    while (remote[u] && (remote[u]!.digest === listed || (mine && remote[u]!.digest === mine.digest))) u++;
    const theirs = remote[u];
    if (!mine && !theirs) return { body: [...body, INDEX_TAIL], length: bytes };
    if (count >= REFERRERS_PAGE_COUNT) break;
    let digest: string;
    let entry: Uint8Array[] | undefined;
    if (mine && (!theirs || mine.digest < theirs.digest)) {
      digest = mine.digest;
      entry = await localEntry(deps, mine);
      row = await local.next();
    } else {
      digest = theirs!.digest;
      entry = entryJson(theirs!, Buffer.from(referrerAnnotations(theirs!.annotations)));
      u++;
    }
    if (entry === undefined) continue;
    const size = entry.reduce((n, part) => n + part.length, count > 0 ? COMMA.length : 0);
    if (count > 0 && bytes + size > REFERRERS_PAGE_BYTES) break;
    body.push(...(count > 0 ? [COMMA] : []), ...entry);
    bytes += size;
    count++;
    listed = digest;
  }
  await local.return(undefined);
  return { body: [...body, INDEX_TAIL], length: bytes, next: listed };
}

const INDEX_HEAD = Buffer.from(`{"schemaVersion":2,"mediaType":${JSON.stringify(OCI_INDEX)},"manifests":[`);
const INDEX_TAIL = Buffer.from(']}');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from('}');

/** The subject's referrers from the index in digest order, read a batch at a time. */
async function* indexed(deps: ReferrersDeps, target: Target, subject: string, q: { after?: string; artifactType?: string }): AsyncGenerator<ReferrerRecord> {
  let after = q.after;
  for (;;) {
    const rows = await deps.repos.referrers(target.key, target.repository, subject, { after, artifactType: q.artifactType, limit: BATCH });
    yield* rows;
    if (rows.length < BATCH) return;
    after = rows[rows.length - 1]!.digest;
    // Other requests (health checks among them) get their turn between batches.
    await nextTurn();
  }
}

/** A referrer's descriptor; a row recorded before the index kept annotations reads them from its manifest. */
async function localEntry(deps: ReferrersDeps, row: ReferrerRecord): Promise<Uint8Array[] | undefined> {
  const descriptor = { mediaType: row.mediaType, digest: row.digest, size: row.size, artifactType: row.artifactType ?? undefined };
  if (row.annotations !== null) return entryJson(descriptor, row.annotations);
  const body = await deps.blobs.readAll(row.digest).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
  if (!body) return undefined;
  try {
    return entryJson(descriptor, Buffer.from(referrerAnnotations(parseManifest(body, row.mediaType).annotations)));
  } catch (err) {
    // A manifest stored before today's limits must not break the listing for every other one.
    deps.logger.warn({ digest: row.digest, err: (err as Error).message }, 'stored referrer manifest no longer parses; left out of the referrers list');
    return undefined;
  }
}

/** A descriptor as JSON in pieces, the annotations spliced in as recorded (JSON that berth wrote itself). */
function entryJson(d: Pick<Descriptor, 'mediaType' | 'digest' | 'size' | 'artifactType'>, annotations: Uint8Array): Uint8Array[] {
  const type = d.artifactType ? `,"artifactType":${JSON.stringify(d.artifactType)}` : '';
  const head = `{"mediaType":${JSON.stringify(d.mediaType)},"digest":${JSON.stringify(d.digest)},"size":${d.size}${type}`;
  return annotations.length > 0 ? [Buffer.from(`${head},"annotations":`), annotations, CLOSE] : [Buffer.from(`${head}}`)];
}

/** The upstream's referrers index; a registry without the API (or out of reach) adds nothing. */
async function upstreamReferrers(deps: ReferrersDeps, target: Target, subject: string): Promise<Descriptor[]> {
  const upstream = target.upstream;
  if (!upstream) return [];
  try {
    return await getReferrers(upstream.client, target.repository, subject);
  } catch (err) {
    deps.logger.debug({ upstream: upstream.config.name, subject, err: (err as Error).message }, 'upstream referrers not available; answering from berth alone');
    return [];
  }
}
