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

/** `Bad Gateway: <message>`, as printable ASCII on one line (a reason phrase allows no more). */
export function reasonPhrase(status: number, message: string): string {
  const standard = STATUS_CODES[status] ?? 'Error';
  const text = message.replace(/[^\x20-\x7e]+/g, ' ').trim();
  return `${standard}: ${text.length > 400 ? `${text.slice(0, 397)}...` : text}`;
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
