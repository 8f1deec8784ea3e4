/** @module upstream/registry-api — berth's requests to a central registry, pull and push, as typed operations: upstream paths are spelled only here. */
import { badGateway, blobUnknown, unavailable } from '../oci/error-catalogue.js';
import { MAX_MANIFEST_SIZE, parseManifest, type Descriptor } from '../oci/manifest.js';
import { OCI_INDEX, UPSTREAM_ACCEPT } from '../oci/mediatypes.js';
import { responseHeader, type RegistryClient, type UpstreamRequest, type UpstreamResponse } from './client.js';
import { upstreamError } from './status.js';
import { UPLOAD_CHUNK_BYTES, putWithDigest, uploadInChunks, type BlobSource } from './upload.js';

/** Paths below `/v2/<repository>/` (the OCI Distribution API); `upstream/` is the only folder that talks to a registry (docs/design.md). */
export const upstreamPath = {
  manifest: (reference: string): string => `manifests/${reference}`,
  blob: (digest: string): string => `blobs/${digest}`,
  uploads: 'blobs/uploads/',
  mount: (digest: string, from: string): string => `blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
  referrers: (subject: string): string => `referrers/${subject}`,
  tags: 'tags/list',
} as const;

// Pull: an unexpected answer throws the error upstream/status maps it to; a 404 is the caller's to name.

/** Pauses before each retry of a manifest request the upstream answered with a 5xx. */
const SERVER_ERROR_RETRIES_MS = [200, 800];

/**
 * A manifest as the upstream answers it: the 200 answer (the caller owns its body; a HEAD has
 * none), or undefined when the upstream does not know it (404). Other answers throw.
 * `known`: the upstream should have it (a tag berth has seen), so a 5xx counts as an outage.
 */
export async function getManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  opts: { readonly head?: boolean; readonly known?: boolean } = {},
): Promise<UpstreamResponse | undefined> {
  const res = await sendRetrying(client, {
    method: opts.head ? 'HEAD' : 'GET',
    repository,
    path: upstreamPath.manifest(reference),
    headers: { accept: UPSTREAM_ACCEPT },
    ...(opts.known ? { known: true } : {}),
  });
  return (await found(res, client, manifestWhat(repository, reference))) ? res : undefined;
}

/** The size an upstream gives for a blob (undefined without a usable Content-Length), or undefined when it does not have it. */
export async function headBlob(client: RegistryClient, repository: string, digest: string): Promise<{ readonly size: number | undefined } | undefined> {
  const res = await client.send({ method: 'HEAD', repository, path: upstreamPath.blob(digest) });
  if (!(await found(res, client, `blob ${digest}`))) return undefined;
  await res.body.dump();
  const size = Number(res.headers['content-length']);
  return { size: Number.isSafeInteger(size) && size >= 0 ? size : undefined };
}

/** A blob's bytes from upstream, from `offset` on when the upstream honoured the range, else from 0. */
export interface UpstreamBlob {
  readonly body: UpstreamResponse['body'];
  /** Where `body` starts: `offset` when resumed, 0 when sent whole. */
  readonly start: number;
  /** The Content-Length of a whole answer, when usable. */
  readonly size: number | undefined;
}

/**
 * GET of a blob, a Range request when resuming at `offset` (then a 5xx counts as an outage: the
 * transfer was under way); undefined when the upstream does not have it. A resume answered with
 * another range than asked for throws.
 */
export async function getBlob(client: RegistryClient, repository: string, digest: string, offset = 0): Promise<UpstreamBlob | undefined> {
  const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
  const res = await client.send({ method: 'GET', repository, path: upstreamPath.blob(digest), headers, known: offset > 0 });
  if (offset > 0 && res.status === 206) {
    const range = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
    if (range && Number(range[1]) === offset) return { body: res.body, start: offset, size: undefined };
    await res.body.dump();
    throw unavailable(`upstream ${client.name} answered a resume at ${offset} with range ${String(res.headers['content-range'])}`);
  }
  if (!(await found(res, client, `blob ${digest}`))) return undefined;
  const length = Number(res.headers['content-length']);
  return { body: res.body, start: 0, size: Number.isSafeInteger(length) && length >= 0 ? length : undefined };
}

/**
 * Bytes [start, end] of a blob the upstream is known to have (its fill is under way): the body
 * of its 206, or undefined when it ignored the Range and answered 200 (that body is dropped
 * unread, so a whole layer does not cross the link twice) or answered another range.
 */
export async function getBlobRange(
  client: RegistryClient,
  repository: string,
  digest: string,
  start: number,
  end: number,
): Promise<UpstreamResponse['body'] | undefined> {
  const res = await client.send({ method: 'GET', repository, path: upstreamPath.blob(digest), headers: { range: `bytes=${start}-${end}` }, known: true });
  if (res.status === 206) {
    if (String(res.headers['content-range'] ?? '').startsWith(`bytes ${start}-${end}/`)) return res.body;
    await res.body.dump();
    return undefined;
  }
  if (res.status === 200) {
    res.body.destroy();
    return undefined;
  }
  throw await upstreamError(res, client.name, `bytes ${start}-${end} of blob ${digest}`, blobUnknown(digest));
}

/**
 * The upstream's referrers of `subject`. A registry without the referrers API (404) is asked for
 * the index under the referrers tag schema's tag instead, where pushing clients keep the list for
 * such registries; none when that is missing or not an index. A registry whose route is missing
 * is remembered for a while, so it is asked for the tag alone. Network failures throw.
 */
export async function getReferrers(client: RegistryClient, repository: string, subject: string): Promise<Descriptor[]> {
  if (client.lacksReferrersApi) return referrersByTag(client, repository, subject);
  const res = await client.send({ method: 'GET', repository, path: upstreamPath.referrers(subject) });
  if (res.status === 404) {
    // A registry with the API answers an unknown repository with a JSON error; a router without
    // the route answers plain text (distribution 2.8: "404 page not found").
    if (!/json/i.test(responseHeader(res, 'content-type') ?? '')) client.noteNoReferrersApi();
    await res.body.dump();
    return referrersByTag(client, repository, subject);
  }
  if (res.status !== 200) {
    await res.body.dump();
    return [];
  }
  return indexEntries(res, false);
}

/**
 * The referrers tag schema's tag of a digest (OCI distribution spec): `<alg>-<encoded>`, the
 * algorithm cut to 32 characters and the encoded part to 64.
 */
export function referrersTag(subject: string): string {
  const colon = subject.indexOf(':');
  return `${subject.slice(0, colon).slice(0, 32)}-${subject.slice(colon + 1).slice(0, 64)}`;
}

async function referrersByTag(client: RegistryClient, repository: string, subject: string): Promise<Descriptor[]> {
  const res = await getManifest(client, repository, referrersTag(subject));
  // A tag of that name holding something else (an image) lists nothing.
  return res ? indexEntries(res, true) : [];
}

/** The entries of the image index answered in `res` (body consumed); none for an oversized one, or (`indexOnly`) one of another type. */
async function indexEntries(res: UpstreamResponse, indexOnly: boolean): Promise<Descriptor[]> {
  if (Number(res.headers['content-length'] ?? 0) > MAX_MANIFEST_SIZE) {
    await res.body.dump();
    return [];
  }
  const text = await res.body.text();
  if (text.length > MAX_MANIFEST_SIZE) return [];
  const index = parseManifest(Buffer.from(text), responseHeader(res, 'content-type'));
  return indexOnly && index.mediaType !== OCI_INDEX ? [] : [...index.manifests];
}

/** The upstream's tags of a repository, or undefined when it does not know the repository. */
export async function getTags(client: RegistryClient, repository: string): Promise<string[] | undefined> {
  const res = await client.send({ method: 'GET', repository, path: upstreamPath.tags });
  const what = `tag list of ${repository}`;
  if (!(await found(res, client, what))) return undefined;
  const text = await res.body.text();
  try {
    const body = JSON.parse(text) as { tags?: unknown };
    return Array.isArray(body.tags) ? body.tags.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    throw badGateway(`upstream ${client.name} sent an invalid ${what}`);
  }
}

/** True for a 200, false (body consumed) for a 404; any other answer throws its mapped error. */
async function found(res: UpstreamResponse, client: RegistryClient, what: string): Promise<boolean> {
  if (res.status === 200) return true;
  if (res.status === 404) {
    await res.body.dump();
    return false;
  }
  throw await upstreamError(res, client.name, what);
}

/**
 * A registry answers the odd 500 while a tag is being rewritten (the soak sees distribution do
 * it): a manifest request is idempotent, so two quick retries spare the client a 502. Network
 * errors are not retried here: the circuit breaker owns those.
 */
async function sendRetrying(client: RegistryClient, req: UpstreamRequest): Promise<UpstreamResponse> {
  for (const pause of SERVER_ERROR_RETRIES_MS) {
    const res = await client.send(req);
    if (res.status < 500 || res.status === 501) return res;
    await res.body.dump().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
  return client.send(req);
}

function manifestWhat(repository: string, reference: string): string {
  return `manifest ${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
}

// Push: with push scope, so the token is ready for the upload that follows.

/** HEAD of a blob in the repository, with push scope (the token is then ready for the upload). */
export async function blobExists(client: RegistryClient, repository: string, digest: string): Promise<boolean> {
  const res = await client.send({ method: 'HEAD', repository, path: upstreamPath.blob(digest), push: true });
  if (res.status === 200 || res.status === 404) {
    await res.body.dump();
    return res.status === 200;
  }
  throw await upstreamError(res, client.name, `blob ${digest} in ${repository}`);
}

/**
 * Puts a blob the upstream does not have into the repository: a mount from `mountFrom` when the
 * upstream can (no bytes cross the link), else the bytes: one monolithic PUT for a blob of at most
 * one chunk, else chunks that resume after a cut (upstream/upload). A failed mount answers 202
 * with an upload URL, which is used as is: no extra round trip.
 */
export async function sendBlob(
  client: RegistryClient,
  repository: string,
  digest: string,
  source: BlobSource,
  mountFrom: readonly string[],
): Promise<'mounted' | 'uploaded'> {
  let location: string | undefined;
  const from = mountFrom.find((r) => r !== repository);
  if (from) {
    const path = upstreamPath.mount(digest, client.upstreamRepository(from));
    const res = await client.send({ method: 'POST', repository, path, push: true, pullFrom: [from] });
    await res.body.dump().catch(() => undefined);
    if (res.status === 201) return 'mounted';
    if (res.status === 202) location = responseHeader(res, 'location');
  }
  const start = async (): Promise<string> => {
    const res = await client.send({ method: 'POST', repository, path: upstreamPath.uploads, push: true });
    if (res.status !== 202) throw await upstreamError(res, client.name, `an upload of blob ${digest} to ${repository}`);
    await res.body.dump();
    const at = responseHeader(res, 'location');
    if (!at) throw badGateway(`upstream ${client.name} started an upload without a Location header`);
    return at;
  };
  location ??= await start();
  if (source.size > UPLOAD_CHUNK_BYTES) {
    await uploadInChunks(client, repository, digest, source, location, start);
    return 'uploaded';
  }
  const res = await putWithDigest(
    client,
    repository,
    location,
    digest,
    { 'content-type': 'application/octet-stream', 'content-length': String(source.size) },
    () => (source.size === 0 ? Buffer.alloc(0) : source.open(0, source.size - 1)),
  );
  if (res.status !== 201 && res.status !== 204) throw await upstreamError(res, client.name, `blob ${digest} (${source.size} bytes) for ${repository}`);
  await res.body.dump();
  return 'uploaded';
}

/** The digest a manifest reference names upstream, or undefined when the upstream has none. */
export async function manifestDigest(client: RegistryClient, repository: string, reference: string): Promise<string | undefined> {
  const res = await client.send({ method: 'HEAD', repository, path: upstreamPath.manifest(reference), push: true, headers: { accept: UPSTREAM_ACCEPT } });
  if (res.status !== 200 && res.status !== 404) throw await upstreamError(res, client.name, `manifest ${repository}:${reference}`);
  await res.body.dump();
  return res.status === 200 ? responseHeader(res, 'docker-content-digest') : undefined;
}

export async function putManifest(client: RegistryClient, repository: string, reference: string, mediaType: string, body: Buffer): Promise<void> {
  const res = await client.send({
    method: 'PUT',
    repository,
    path: upstreamPath.manifest(reference),
    push: true,
    headers: { 'content-type': mediaType, 'content-length': String(body.length) },
    body: () => body,
  });
  if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await upstreamError(res, client.name, manifestWhat(repository, reference));
  await res.body.dump();
}

/** DELETE of a manifest (by tag or digest) upstream; an upstream that no longer has it is fine. */
export function deleteManifest(client: RegistryClient, repository: string, reference: string): Promise<void> {
  return deleteUpstream(client, repository, upstreamPath.manifest(reference));
}

/** DELETE of a blob upstream; an upstream that no longer has it is fine. */
export function deleteBlob(client: RegistryClient, repository: string, digest: string): Promise<void> {
  return deleteUpstream(client, repository, upstreamPath.blob(digest));
}

async function deleteUpstream(client: RegistryClient, repository: string, path: string): Promise<void> {
  const res = await client.send({ method: 'DELETE', repository, path, push: true });
  if (res.status === 202 || res.status === 200 || res.status === 204 || res.status === 404) {
    await res.body.dump();
    return;
  }
  throw await upstreamError(res, client.name, `DELETE of ${repository}/${path}`);
}
