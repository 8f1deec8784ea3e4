/** @module http/admin-io — the admin API's plumbing: JSON errors, request bodies, the client address. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, isDiskFull, isOciError, toOciError } from '../oci/errors.js';

export { ApiError };
import { sendJson } from './respond.js';

/**
 * The client address of an admin request: a serving worker that forwards the request to the
 * worker holding the admin state (see assembly/admin-forward) records the original one here.
 */
export const FORWARDED_CLIENT = Symbol('berth.forwardedClient');

export function clientAddress(req: IncomingMessage): string | undefined {
  return (req as IncomingMessage & { [FORWARDED_CLIENT]?: string })[FORWARDED_CLIENT] ?? req.socket.remoteAddress;
}

/** Writes the error envelope; OCI errors from the cache keep their code and status. Returns what was sent. */
export function sendApiError(res: ServerResponse, err: unknown, head: boolean): { status: number; code: string; message: string } {
  let e: { status: number; code: string; message: string; headers: Record<string, string> };
  if (err instanceof ApiError) e = err;
  else if (isOciError(err) || isDiskFull(err)) {
    const o = toOciError(err);
    e = { status: o.status, code: o.code, message: o.message, headers: { ...o.headers } };
  } else e = { status: 500, code: 'INTERNAL', message: 'internal error; see the berth log', headers: {} };
  if (res.headersSent) {
    res.destroy();
    return e;
  }
  for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  sendJson(res, e.status, { errors: [{ code: e.code, message: e.message }] }, head);
  return e;
}

/** Request bodies of the admin API are small JSON documents. */
const MAX_BODY = 1024 * 1024;

export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const bytes = await readBodyBytes(req);
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ApiError(400, 'INVALID_REQUEST', 'request body is not valid JSON; send a JSON object, e.g. {"image":"xing/app:v1"}');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ApiError(400, 'INVALID_REQUEST', 'request body must be a JSON object');
  return doc as Record<string, unknown>;
}

/** A JSON body's bytes, at most MAX_BODY (413 beyond). */
export async function readBodyBytes(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Not destroyed when the limit stops the loop: the rest of the body is dropped (http/linger), so a kept-alive connection goes on.
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new ApiError(413, 'BODY_TOO_LARGE', `request body exceeds ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export interface AdminCredentials {
  readonly username: string;
  readonly password: string;
}
