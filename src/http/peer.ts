/** @module http/peer — the endpoint the site's other replicas read blobs from: cluster secret required, repository visibility kept. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import type { Logger } from 'pino';
import type { PeerMode } from '../ports/fills.js';
import type { BlobHandle } from '../cache/blob-handle.js';
import type { RegistryCache } from '../cache/registry.js';
import type { Upstream, Target } from '../upstream/target.js';
import { parseDigest } from '../oci/digest.js';
import {
  badRequest,
  bodyTooLarge,
  methodNotAllowed,
  nameUnknown,
  rangeNotSatisfiable,
  unauthorized,
  unavailable,
  unsupported,
} from '../oci/error-catalogue.js';
import { assertRepositoryName } from '../oci/reference.js';
import { PEER_AUTH_SCHEME, PEER_COPY_PATH, PEER_PATH, type CopyRequest, type PeerCopy } from '../ports/peers.js';
import { sendError } from './respond.js';

export interface PeerDeps {
  readonly secret: string;
  readonly cache: RegistryCache;
  readonly upstreams: readonly Upstream[];
  readonly logger: Logger;
  /** Takes copies of write-behind pushes from the replica that took them. */
  readonly copier?: PeerCopy<Target>;
}

/** A copy request lists digests only: far below this. */
const MAX_COPY_REQUEST = 1024 * 1024;

const hash = (s: string) => createHash('sha256').update(s).digest();

/**
 * Answers `GET /_berth/peer/blobs/<digest>?upstream=&repository=&mode=` (Range `bytes=N-`, or
 * `bytes=START-END` in mode `range`) and
 * `POST /_berth/peer/copy`; false for other paths.
 */
export async function handlePeer(deps: PeerDeps, req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  if (!url.pathname.startsWith(PEER_PATH) && url.pathname !== PEER_COPY_PATH) return false;
  try {
    const auth = req.headers.authorization ?? '';
    const given = auth.startsWith(`${PEER_AUTH_SCHEME} `) ? auth.slice(PEER_AUTH_SCHEME.length + 1) : '';
    // Compared as hashes: equal length, constant time.
    if (!timingSafeEqual(hash(given), hash(deps.secret))) {
      throw unauthorized('peer requests need the cluster secret');
    }
    if (url.pathname === PEER_COPY_PATH) {
      await takeCopy(deps, req, res);
      return true;
    }
    if (req.method !== 'GET') throw methodNotAllowed(req.method, ['GET']);
    const digest = url.pathname.slice(PEER_PATH.length);
    parseDigest(digest);
    const upstream = deps.upstreams.find((u) => u.config.name === url.searchParams.get('upstream'));
    const repository = url.searchParams.get('repository') ?? '';
    assertRepositoryName(repository);
    const asked = url.searchParams.get('mode');
    const mode: PeerMode = asked === 'fill' || asked === 'range' ? asked : 'held';
    if (!upstream) throw nameUnknown('no such upstream here');
    // The same visibility check as a node's request: the repository must reference the blob.
    const blob = await deps.cache.blob({ upstream, key: upstream.config.name, repository }, digest, mode, { ranged: mode === 'range' });
    try {
      await (mode === 'range' ? sendRange(blob, req, res) : sendFrom(blob, req, res));
    } finally {
      await blob.close();
    }
  } catch (err) {
    const e = sendError(res, err);
    if (e.code === 'UNKNOWN') deps.logger.error({ err }, 'unexpected error serving a peer');
  }
  return true;
}

/** Modes `held` and `fill`: the blob from byte N (`Range: bytes=N-`) to its end. */
async function sendFrom(blob: BlobHandle, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
  const size = blob.size;
  if (size !== undefined && start > 0 && start >= size) throw rangeNotSatisfiable(`range from ${start} outside ${size} bytes`, size);
  res.statusCode = start > 0 ? 206 : 200;
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Docker-Content-Digest', blob.digest);
  if (start > 0) res.setHeader('Content-Range', `bytes ${start}-${size !== undefined ? size - 1 : ''}/${size ?? '*'}`);
  if (size !== undefined) res.setHeader('Content-Length', size - start);
  await piped(blob.open(start, size === undefined ? undefined : size - 1), res);
}

/**
 * Mode `range`: bytes [start, end] (`Range: bytes=START-END`) as a client's range of this blob is
 * answered here (cache/lazy-range: local bytes, else this replica's upstream, joined with its own
 * clients' fetches), never from another replica.
 */
async function sendRange(blob: BlobHandle, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (!m) throw badRequest('a peer range request needs Range: bytes=START-END');
  const [start, end] = [Number(m[1]), Number(m[2])];
  // Waiting for a size only the fill will tell would hold the asking replica: it fetches the range itself.
  if (blob.size === undefined) throw unavailable(`the size of ${blob.digest} is not known here yet`);
  if (end < start || end >= blob.size) throw rangeNotSatisfiable(`range ${start}-${end} outside ${blob.size} bytes`, blob.size);
  const body = blob.range ? await blob.range(start, end) : blob.open(start, end);
  res.statusCode = 206;
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Content-Range', `bytes ${start}-${end}/${blob.size}`);
  res.setHeader('Content-Length', end - start + 1);
  await piped(body, res);
}

/** Resolves when `body` was sent, or the response cut (a source that fails mid-way must not look complete). */
function piped(body: AsyncIterable<Uint8Array>, res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    pipeline(body, res, (err) => {
      if (err && !res.destroyed) res.destroy(err);
      resolve();
    });
  });
}

/** `POST /_berth/peer/copy`: answered 200 only once every item is stored here, verified and synced. */
async function takeCopy(deps: PeerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') throw methodNotAllowed(req.method, ['POST']);
  if (!deps.copier) throw unsupported('this replica takes no copies');
  const chunks: Buffer[] = [];
  let n = 0;
  // Not destroyed when the limit stops the loop: the rest of the body is dropped (http/linger).
  for await (const c of req.iterator({ destroyOnReturn: false })) {
    n += (c as Buffer).length;
    if (n > MAX_COPY_REQUEST) throw bodyTooLarge(`copy request exceeds ${MAX_COPY_REQUEST} bytes`);
    chunks.push(c as Buffer);
  }
  let body: CopyRequest;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as CopyRequest;
  } catch {
    throw badRequest('copy request is not JSON');
  }
  const upstream = deps.upstreams.find((u) => u.config.name === body.upstream);
  if (!upstream) throw nameUnknown('no such upstream here');
  assertRepositoryName(body.repository);
  if (typeof body.from !== 'string' || !Array.isArray(body.blobs) || !Array.isArray(body.manifests))
    throw badRequest('copy request needs from, blobs and manifests');
  for (const d of [...body.blobs, ...body.manifests.map((m) => m.digest)]) parseDigest(d);
  const out = await deps.copier.take({ upstream, key: upstream.config.name, repository: body.repository }, body);
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(out));
}
