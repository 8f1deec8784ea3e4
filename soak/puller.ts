/** @module soak/puller — one image pull over raw HTTP, every byte verified, and what went wrong named as a cause. */
import { createHash } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import { ACCEPT_ALL } from '../test/fixtures/http-pull.js';

/** Why a pull did not complete: the figures are reported per cause. */
export type Cause =
  | 'refused' // no listener: berth is not up
  | 'cut' // the connection closed or reset before the response began
  | 'cut-body' // the response began, then the connection closed before its end
  | 'timeout' // no answer, or the body stalled
  | 'digest' // bytes that do not match their digest
  | 'wrong-tag' // a tag answered with a digest it never pointed to
  | 'skopeo-error' // a skopeo failure none of the others describe
  | `status-${number}`; // an HTTP error answer (its OCI code is in the detail)

export class PullError extends Error {
  constructor(
    override readonly cause: Cause,
    readonly what: string,
    detail: string,
  ) {
    super(`${cause}: ${what}: ${detail}`);
  }
}

export interface Pulled {
  readonly manifestDigest: string;
  /** Manifest and blob bytes received, each verified. */
  readonly bytes: number;
}

const sha256 = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Connection-level failures, named the same way whichever call saw them. */
export function classify(err: unknown): Cause {
  const code = String((err as { code?: unknown }).code ?? '');
  const message = (err as Error).message ?? '';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return 'timeout';
  if (code.startsWith('UND_ERR') || ['ECONNRESET', 'EPIPE'].includes(code) || /other side closed|socket/i.test(message)) return 'cut';
  return 'cut';
}

async function get(
  base: string,
  path: string,
  what: string,
  headers: Record<string, string>,
  dispatcher: Dispatcher,
): Promise<{ body: Buffer; headers: Record<string, unknown> }> {
  let res: Dispatcher.ResponseData;
  try {
    res = await request(`${base}${path}`, { headers, dispatcher });
  } catch (err) {
    throw new PullError(classify(err), what, (err as Error).message);
  }
  const hash = createHash('sha256');
  const parts: Buffer[] = [];
  try {
    for await (const chunk of res.body) {
      if (res.statusCode === 200 && !path.includes('/manifests/')) hash.update(chunk as Buffer);
      else parts.push(chunk as Buffer);
    }
  } catch (err) {
    const cause = classify(err);
    throw new PullError(cause === 'cut' ? 'cut-body' : cause, what, `body: ${(err as Error).message}`);
  }
  const body = Buffer.concat(parts);
  if (res.statusCode !== 200) {
    const code = /"code"\s*:\s*"([A-Z_]+)"/.exec(body.toString('utf8'))?.[1] ?? '';
    throw new PullError(`status-${res.statusCode}`, what, `${code} ${body.toString('utf8').slice(0, 200)}`);
  }
  // Blobs are hashed as they stream (no buffering of layers); the caller checks the hex.
  return { body: path.includes('/manifests/') ? body : Buffer.from(hash.digest('hex')), headers: res.headers };
}

/**
 * GETs the manifest (by tag or digest), then every blob it names, and checks every digest.
 * `allowed` lists the digests a tag may answer with (its history); by digest it is the digest.
 */
export async function pullImage(base: string, repository: string, reference: string, allowed: ReadonlySet<string>, dispatcher: Dispatcher): Promise<Pulled> {
  const what = `${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
  const m = await get(base, `/v2/${repository}/manifests/${reference}`, `${what} manifest`, { accept: ACCEPT_ALL }, dispatcher);
  const manifestDigest = sha256(m.body);
  if (m.headers['docker-content-digest'] !== manifestDigest)
    throw new PullError('digest', what, `header ${String(m.headers['docker-content-digest'])}, bytes ${manifestDigest}`);
  if (!allowed.has(manifestDigest)) throw new PullError('wrong-tag', what, `answered ${manifestDigest}`);
  const doc = JSON.parse(m.body.toString('utf8')) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
  let bytes = m.body.length;
  for (const blob of [doc.config, ...doc.layers]) {
    const got = await get(base, `/v2/${repository}/blobs/${blob.digest}`, `${what} blob ${blob.digest.slice(7, 19)}`, {}, dispatcher);
    if (`sha256:${got.body.toString()}` !== blob.digest) throw new PullError('digest', what, `blob ${blob.digest} arrived as sha256:${got.body.toString()}`);
    bytes += blob.size;
  }
  return { manifestDigest, bytes };
}
