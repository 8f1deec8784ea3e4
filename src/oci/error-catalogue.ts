/** @module oci/error-catalogue — the named constructors of the OCI errors berth answers with, one per meaning, so every code and status is chosen here. */
import { OciError } from './errors.js';

// Content: blobs, manifests, digests, sizes and ranges.

/** A blob this registry cannot serve: 404 BLOB_UNKNOWN; `message` when the reason is more specific than "not known". */
export function blobUnknown(digest: string, message = `blob ${digest} is not known to this registry`): OciError {
  return new OciError('BLOB_UNKNOWN', message, { detail: { digest } });
}

/** An upload session that does not exist (any more): 404 BLOB_UPLOAD_UNKNOWN. */
export function blobUploadUnknown(id: string): OciError {
  return new OciError('BLOB_UPLOAD_UNKNOWN', `upload ${id.slice(0, 80)} is not known: it finished, was cancelled, or expired; start a new one with POST`, {
    detail: { uuid: id.slice(0, 80) },
  });
}

/** A manifest not known in a repository: 404 MANIFEST_UNKNOWN. */
export function manifestUnknown(repository: string, reference: string): OciError {
  return new OciError('MANIFEST_UNKNOWN', `manifest ${reference} is not known in repository ${repository}`, { detail: { name: repository, reference } });
}

/** 404 MANIFEST_UNKNOWN for a specific reason: no longer stored, not a reference at all, not acceptable to this client. */
export function manifestUnservable(message: string, detail: unknown): OciError {
  return new OciError('MANIFEST_UNKNOWN', message, { detail });
}

/** A manifest body (or a push's parameters) that cannot be accepted: 400 MANIFEST_INVALID. */
export function manifestInvalid(message: string, detail?: unknown): OciError {
  return new OciError('MANIFEST_INVALID', message, { detail });
}

/** More tag parameters on one push than berth takes: 414 MANIFEST_INVALID. */
export function tooManyTagParameters(limit: number): OciError {
  return new OciError('MANIFEST_INVALID', `at most ${limit} tag parameters per push; push the rest in another request`, { status: 414 });
}

/** A pushed manifest references content the registry lacks: 400 (not 404), as distribution answers a push. */
export function manifestBlobUnknown(message: string, detail: unknown): OciError {
  return new OciError('MANIFEST_BLOB_UNKNOWN', message, { status: 400, detail });
}

/** A malformed digest, or content that does not match its digest: 400 DIGEST_INVALID. */
export function digestInvalid(message: string, detail?: unknown): OciError {
  return new OciError('DIGEST_INVALID', message, { detail });
}

/** A peer replica sent a manifest that does not match its digest: the peer is at fault, hence 502. */
export function peerDigestMismatch(from: string, digest: string): OciError {
  return new OciError('DIGEST_INVALID', `manifest from ${from} does not match ${digest}`, { status: 502 });
}

/** Content of another length than announced: 400 SIZE_INVALID. */
export function sizeInvalid(message: string): OciError {
  return new OciError('SIZE_INVALID', message);
}

/** A request body over its limit: 413 SIZE_INVALID. */
export function bodyTooLarge(message: string): OciError {
  return new OciError('SIZE_INVALID', message, { status: 413 });
}

/** A read range outside a blob of `size` bytes: 416 with the size, as RFC 9110 asks. */
export function rangeNotSatisfiable(message: string, size: number): OciError {
  return new OciError('RANGE_INVALID', message, { headers: { 'Content-Range': `bytes */${size}` } });
}

/** A Content-Range header that is not <start>-<end>: 416 RANGE_INVALID. */
export function rangeInvalid(message: string): OciError {
  return new OciError('RANGE_INVALID', message);
}

/** A chunk out of place in an upload: 416 with where the upload stands, so the client resumes there. */
export function uploadRangeInvalid(why: string, uuid: string, offset: number, range: string): OciError {
  return new OciError('RANGE_INVALID', `${why}; resume from the Range this upload reports`, {
    headers: { Range: range, 'Docker-Upload-UUID': uuid },
    detail: { offset },
  });
}

// Names: repositories, registries, upstreams.

/** A repository name (or a reference, or a request path) that breaks the grammar: 400 NAME_INVALID. */
export function nameInvalid(message: string, detail?: unknown): OciError {
  return new OciError('NAME_INVALID', message, { detail });
}

/** A repository, registry or upstream this berth does not know: 404 NAME_UNKNOWN. */
export function nameUnknown(message: string, detail?: unknown): OciError {
  return new OciError('NAME_UNKNOWN', message, { detail });
}

// Who may do what.

/** Credentials missing or wrong: 401 UNAUTHORIZED, with the challenge to answer when berth asks for them. */
export function unauthorized(message: string, challenge?: string): OciError {
  return new OciError('UNAUTHORIZED', message, challenge === undefined ? {} : { headers: { 'WWW-Authenticate': challenge } });
}

/** An authenticated (or anonymous) caller the rules refuse: 403 DENIED. */
export function accessDenied(message: string, detail: unknown): OciError {
  return new OciError('DENIED', message, { detail });
}

/** A manifest (or its blobs) in a repository whose verify: policy enforces signatures, without a valid one: 403 DENIED. */
export function signatureDenied(message: string, detail: unknown): OciError {
  return new OciError('DENIED', message, { detail });
}

/** Refused because of the resource's state right now (pinned, being pulled, queued): 409 DENIED. */
export function conflict(message: string): OciError {
  return new OciError('DENIED', message, { status: 409 });
}

/** Too many at once from this caller: 429 with how long to wait. */
export function tooManyRequests(message: string, retryAfterSeconds: number): OciError {
  return new OciError('TOOMANYREQUESTS', message, { headers: { 'Retry-After': String(retryAfterSeconds) } });
}

// The request itself.

/** An operation this berth does not perform as configured: 405 UNSUPPORTED. */
export function unsupported(message: string): OciError {
  return new OciError('UNSUPPORTED', message);
}

/** A method the endpoint does not take: 405 with Allow. */
export function methodNotAllowed(
  method: string | undefined,
  allowed: readonly string[],
  message = `${String(method)} is not supported on this endpoint`,
): OciError {
  return new OciError('UNSUPPORTED', message, { headers: { Allow: allowed.join(', ') } });
}

/** A request malformed below the OCI level (headers, body shape): 400 UNSUPPORTED, distribution's choice. */
export function badRequest(message: string): OciError {
  return new OciError('UNSUPPORTED', message, { status: 400 });
}

/** A request node's HTTP parser rejects (malformed, headers too large, headers too slow): the parser's status, code UNSUPPORTED. */
export function unparsableRequest(status: 400 | 408 | 431, message: string): OciError {
  return new OciError('UNSUPPORTED', message, { status });
}

/** A path no route matches: 404 UNSUPPORTED. */
export function noSuchEndpoint(method: string | undefined, path: string): OciError {
  return new OciError('UNSUPPORTED', `no such endpoint: ${String(method)} ${path.slice(0, 200)}`, { status: 404 });
}

/** An Expect header other than 100-continue: 417. */
export function expectationFailed(expect: string): OciError {
  return new OciError('UNSUPPORTED', `Expect: ${expect.slice(0, 100)} is not supported; only 100-continue is`, { status: 417 });
}

// Berth or what it depends on cannot serve now.

/** Cannot serve now, worth a retry later: 503 UNAVAILABLE. */
export function unavailable(message: string, detail?: unknown): OciError {
  return new OciError('UNAVAILABLE', message, { detail });
}

/** Berth is at its own limit (connections): 503 with how long to wait. */
export function overloaded(message: string, retryAfterSeconds: number): OciError {
  return new OciError('UNAVAILABLE', message, { headers: { 'Retry-After': String(retryAfterSeconds) } });
}

/** An upstream (or its token service) answered, but not usably: 502 UNAVAILABLE. */
export function badGateway(message: string): OciError {
  return new OciError('UNAVAILABLE', message, { status: 502 });
}

/** A request that came back to this berth through its own upstream: 508, never fetched again. */
export function loopDetected(message: string): OciError {
  return new OciError('UNAVAILABLE', message, { status: 508 });
}

/** A copy asked for by a replica the site does not list as live: 409. */
export function replicaNotLive(from: string): OciError {
  return new OciError('UNAVAILABLE', `${from} is not a live replica of this site`, { status: 409 });
}

/** An unexpected failure: 500 UNKNOWN naming the request id, so the log line is found. */
export function internalError(message: string, requestId: string): OciError {
  return new OciError('UNKNOWN', `${message} (request ${requestId})`, { detail: { requestId } });
}

/** The same error (code, status, detail) told with more context. */
export function restated(err: OciError, message: string): OciError {
  return new OciError(err.code, message, { status: err.status, detail: err.detail });
}
