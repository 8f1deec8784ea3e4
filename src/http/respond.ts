/** @module http/respond — writing OCI error envelopes and JSON bodies with the registry's common headers. */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { type OciError, toOciError } from '../oci/errors.js';

export const API_VERSION_HEADER = 'Docker-Distribution-Api-Version';

/** Sends the JSON error envelope; a response whose headers are already out is cut instead. */
export function sendError(res: ServerResponse, err: unknown, head = false): OciError {
  const oci = toOciError(err);
  if (res.headersSent) {
    res.destroy(oci);
    return oci;
  }
  const body = JSON.stringify(oci.toEnvelope());
  res.statusCode = oci.status;
  // Docker, skopeo and ctr print the status line of a 5xx (not its body): carry the cause there too.
  if (oci.status >= 400 && oci.status !== 401) res.statusMessage = reasonPhrase(oci.status, oci.message);
  for (const [k, v] of Object.entries(oci.headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(head ? undefined : body);
  return oci;
}

/** The longest message a status line carries; Docker, skopeo and ctr print the whole line, the bound is berth's. */
const REASON_CHARS = 400;
const FIX = '; fix: ';

/**
 * `Bad Gateway: <message>`, as printable ASCII on one line (a reason phrase allows no more). A long
 * message loses the middle of its cause, never its fix: the fix is what the user acts on.
 */
export function reasonPhrase(status: number, message: string): string {
  const standard = STATUS_CODES[status] ?? 'Error';
  const text = message.replace(/[^\x20-\x7e]+/g, ' ').trim();
  if (text.length <= REASON_CHARS) return `${standard}: ${text}`;
  const at = text.indexOf(FIX);
  if (at < 0) return `${standard}: ${text.slice(0, REASON_CHARS - 3)}...`;
  const cause = text.slice(0, at);
  const fix = text.slice(at);
  // The cause's start names the upstream and its end the error code: keep both ends.
  const room = Math.max(REASON_CHARS - fix.length - 3, 40);
  if (cause.length <= room) return `${standard}: ${text}`;
  const head = Math.ceil(room * 0.6);
  return `${standard}: ${cause.slice(0, head)}...${cause.slice(cause.length - (room - head))}${fix}`;
}

export function sendJson(res: ServerResponse, status: number, value: unknown, head = false, contentType = 'application/json; charset=utf-8'): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(head ? undefined : body);
}

/** JSON already serialised, in pieces (a referrers page, built without parsing what it lists). */
export function sendJsonParts(
  res: ServerResponse,
  status: number,
  parts: readonly Uint8Array[],
  length: number,
  head = false,
  contentType = 'application/json',
): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', length);
  if (head) return void res.end();
  res.cork();
  for (const part of parts) res.write(part);
  res.end();
}
