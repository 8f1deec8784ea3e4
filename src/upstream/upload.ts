/**
 * @module upstream/upload — a blob upload to a central registry in chunks (PATCH with
 * Content-Range) that, after a cut link, asks the registry how much it has (upload status: GET
 * of the upload URL, its Range header) and sends only the rest.
 */
import type { Readable } from 'node:stream';
import { UnreachableError } from '../oci/errors.js';
import { badGateway } from '../oci/error-catalogue.js';
import { describeNetworkError, responseHeader, type RegistryClient, type UpstreamResponse } from './client.js';
import { upstreamError } from './status.js';

/** Bytes per PATCH: a cut costs at most the chunk in flight, and each chunk is one round trip. */
export const UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024;
/** Cuts in a row without progress before the upload gives up (the queue retries it later). */
const MAX_STALLS = 8;

export interface BlobSource {
  readonly size: number;
  /** A fresh stream of bytes start..end (inclusive) each time (a retry reads them again). */
  open(start: number, end: number): Readable;
}

/** Completes an upload started at `location`: PUT with `?digest=`, carrying `body` (the whole blob, or nothing after chunks). */
export function putWithDigest(
  client: RegistryClient,
  repository: string,
  location: string,
  digest: string,
  headers: Record<string, string>,
  body: () => Readable | Buffer,
): Promise<UpstreamResponse> {
  const url = new URL(location, client.remoteurl);
  url.searchParams.set('digest', digest);
  return client.send({ method: 'PUT', repository, path: '', url: url.toString(), push: true, headers, body });
}

interface UploadState {
  url: string;
  offset: number;
}

/** What went wrong on the link (not an answer from the registry): worth asking where the upload stands. */
function isCut(err: unknown): boolean {
  return err instanceof UnreachableError;
}

/** `Range: 0-N` → N + 1 bytes received (distribution answers 0-0 for none). */
function confirmed(res: UpstreamResponse): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(responseHeader(res, 'range') ?? '');
  if (!m) return undefined;
  const last = Number(m[1]);
  return last === 0 ? 0 : last + 1;
}

function next(res: UpstreamResponse, base: string, current: string): string {
  const location = responseHeader(res, 'location');
  return location ? new URL(location, base).toString() : current;
}

/** Sends `source` to an upload started at `location`, then completes it with the digest. */
export async function uploadInChunks(
  client: RegistryClient,
  repository: string,
  digest: string,
  source: BlobSource,
  location: string,
  restart: () => Promise<string>,
): Promise<{ resumed: number }> {
  const state: UploadState = { url: new URL(location, client.remoteurl).toString(), offset: 0 };
  let stalls = 0;
  let resumed = 0;
  while (state.offset < source.size) {
    const start = state.offset;
    const end = Math.min(start + UPLOAD_CHUNK_BYTES, source.size) - 1;
    try {
      const res = await client.send({
        method: 'PATCH',
        repository,
        path: '',
        url: state.url,
        push: true,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - start + 1), 'content-range': `${start}-${end}` },
        body: () => source.open(start, end),
      });
      // 416, 400 and 404 say the registry's offset differs from ours (or it lost the upload): ask where it stands.
      if (res.status !== 202 && res.status !== 416 && res.status !== 400 && res.status !== 404)
        throw await upstreamError(res, client.name, `a chunk (${start}-${end}) of blob ${digest}`);
      await res.body.dump().catch(() => undefined);
      if (res.status === 202) {
        state.url = next(res, client.remoteurl, state.url);
        state.offset = confirmed(res) ?? end + 1;
        stalls = 0;
        continue;
      }
    } catch (err) {
      if (!isCut(err)) throw err;
    }
    if (++stalls > MAX_STALLS) throw badGateway(`upload of blob ${digest} to ${client.name} made no progress after ${MAX_STALLS} tries`);
    // Where does the registry stand? A lost upload (404) starts again from nothing.
    await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** stalls, 3_000)));
    const at = await status(client, repository, state.url).catch((err: unknown) => {
      if (isCut(err)) return { offset: state.offset, url: state.url, lost: false };
      throw err;
    });
    if (at.lost) {
      state.url = new URL(await restart(), client.remoteurl).toString();
      state.offset = 0;
    } else {
      state.url = at.url;
      if (at.offset > start) stalls = 0;
      state.offset = at.offset;
      resumed++;
    }
  }
  const res = await putWithDigest(client, repository, state.url, digest, { 'content-length': '0' }, () => Buffer.alloc(0));
  // The same mapper as every push: a refusal (4xx) keeps its code and is permanent, a 5xx or 429 is waited out.
  if (res.status !== 201 && res.status !== 204)
    throw await upstreamError(res, client.name, `blob ${digest} (${source.size} bytes, completing an upload in chunks) for ${repository}`);
  await res.body.dump();
  return { resumed };
}

async function status(client: RegistryClient, repository: string, url: string): Promise<{ offset: number; url: string; lost: boolean }> {
  let res: UpstreamResponse;
  try {
    res = await client.send({ method: 'GET', repository, path: '', url, push: true });
  } catch (err) {
    if (isCut(err)) throw err;
    throw badGateway(`upload status of ${url}: ${describeNetworkError(err)}`);
  }
  await res.body.dump().catch(() => undefined);
  if (res.status === 204 || res.status === 200) return { offset: confirmed(res) ?? 0, url: next(res, client.remoteurl, url), lost: false };
  return { offset: 0, url, lost: true };
}
