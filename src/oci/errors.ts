/** @module oci/errors — the catalogue of OCI distribution error codes and the error type every layer throws. */

/** Each code the distribution spec (and distribution itself) assigns, with its HTTP status and meaning. */
export const ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, description: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, description: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, description: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, description: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 404, description: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, description: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, description: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, description: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, description: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, description: 'provided length did not match content length' },
  RANGE_INVALID: { status: 416, description: 'requested range is not satisfiable' },
  UNAUTHORIZED: { status: 401, description: 'authentication required' },
  DENIED: { status: 403, description: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, description: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, description: 'too many requests' },
  UNAVAILABLE: { status: 503, description: 'service unavailable' },
  UNKNOWN: { status: 500, description: 'unknown error' },
  // distribution's code for a bad `n` on tag and catalog listings.
  PAGINATION_NUMBER_INVALID: { status: 400, description: 'invalid number of results requested' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error that maps one-to-one onto an OCI error envelope entry. */
export class OciError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers (e.g. WWW-Authenticate, Retry-After). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message?: string, opts: { detail?: unknown; status?: number; headers?: Record<string, string> } = {}) {
    super(message ?? ERROR_CODES[code].description);
    this.name = 'OciError';
    this.code = code;
    this.status = opts.status ?? ERROR_CODES[code].status;
    this.detail = opts.detail;
    this.headers = opts.headers ?? {};
  }

  /** The JSON envelope clients parse: {"errors":[{code,message,detail}]}. */
  toEnvelope(): { errors: Array<{ code: string; message: string; detail: unknown }> } {
    return { errors: [{ code: this.code, message: this.message, detail: this.detail ?? null }] };
  }
}

/**
 * No answer came: the connection was refused, reset or timed out, or the breaker knows the
 * upstream is down. UNAVAILABLE (503) like any outage; its type tells a cut link from an answer,
 * so an upload in chunks asks where it stands instead of reading messages.
 */
export class UnreachableError extends OciError {
  constructor(message: string) {
    super('UNAVAILABLE', message);
    this.name = 'UnreachableError';
  }
}

/**
 * berth closed its own connection pool to an upstream (it is stopping): UNAVAILABLE to a client
 * still waiting, but never worth a retry, which would only fail again and keep a stopping
 * process alive.
 */
export class UpstreamClosedError extends OciError {
  constructor(upstream: string) {
    super('UNAVAILABLE', `upstream ${upstream} is no longer asked: berth is stopping`);
    this.name = 'UpstreamClosedError';
  }
}

/** undici's error for a request on (or a body from) a pool that was closed or destroyed. */
export function isClosedPoolError(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  return OWN_CLIENT_CLOSED_CODES.has(String(e?.code ?? '')) || OWN_CLIENT_CLOSED_CODES.has(String(e?.cause?.code ?? ''));
}

export function isOciError(err: unknown): err is OciError {
  return err instanceof OciError;
}

/**
 * The one answer for a malformed query parameter: 400, the message and detail naming it (as
 * distribution's `{"n": ...}`); `code` is the spec's code for that kind of value.
 */
export function queryParameterInvalid(name: string, value: string, expected: string, code: ErrorCode = 'UNSUPPORTED'): OciError {
  const shown = value.length > 100 ? `${value.slice(0, 100)}...` : value;
  return new OciError(code, `query parameter ${name}=${JSON.stringify(shown)} is invalid: ${expected}`, { status: 400, detail: { [name]: shown } });
}

/** Limit on manifest bodies, pushed or pulled (distribution uses the same 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The one answer for a manifest over the limit, whichever layer notices: 413 MANIFEST_INVALID. */
export function manifestTooLarge(size?: number, manifest = 'manifest'): OciError {
  const what = size === undefined ? manifest : `${manifest} of ${size} bytes`;
  return new OciError('MANIFEST_INVALID', `${what} exceeds the limit of ${MAX_MANIFEST_BYTES} bytes (4 MiB)`, {
    status: 413,
    detail: { limit: MAX_MANIFEST_BYTES },
  });
}

/**
 * Codes that mean "no space": the file system (ENOSPC), a quota (EDQUOT), or SQLite, which says
 * SQLITE_FULL for a write and SQLITE_IOERR_SHMSIZE when it cannot grow the WAL index of a
 * database it opens on a full disk.
 */
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL', 'SQLITE_IOERR_SHMSIZE']);

export function isDiskFull(err: unknown): boolean {
  return typeof err === 'object' && err !== null && DISK_FULL_CODES.has(String((err as { code?: unknown }).code));
}

/** The one answer for a full disk, whichever write met it: 507 UNAVAILABLE naming the fix. */
export function diskFull(what = 'the request'): OciError {
  return new OciError('UNAVAILABLE', `disk full: berth could not store ${what}; nothing of it was kept; free space on the store or lower storage.maxsize`, {
    status: 507,
  });
}

/** Any error as the envelope it is answered with: OCI errors as they are, a full disk 507, anything else 500 UNKNOWN. */
export function toOciError(err: unknown): OciError {
  if (isOciError(err)) return err;
  return isDiskFull(err) ? diskFull() : new OciError('UNKNOWN', 'internal error; see the berth log');
}

/** Network failures worth waiting out: the connection, not the request, was the problem. */
const TRANSIENT_NETWORK_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'EAI_AGAIN']);
/** undici's answers for a request on a client that was closed or destroyed. */
const OWN_CLIENT_CLOSED_CODES = new Set(['UND_ERR_DESTROYED', 'UND_ERR_CLOSED']);

/**
 * The one answer to "is this worth a retry": network drops and timeouts, an upstream's 5xx or
 * 429 (UNAVAILABLE, TOOMANYREQUESTS), and errors that say so themselves (a body cut short).
 * Refusals (other 4xx) and verification failures are not.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof UpstreamClosedError) return false;
  if (err instanceof OciError) return err.code === 'UNAVAILABLE' || err.code === 'TOOMANYREQUESTS';
  if ((err as { transient?: unknown } | null)?.transient === true) return true;
  const code = (err as NodeJS.ErrnoException | null)?.code ?? '';
  // A connection pool berth closed itself (it is stopping) stays closed: no retry can succeed.
  if (isClosedPoolError(err)) return false;
  return code.startsWith('UND_ERR') || TRANSIENT_NETWORK_CODES.has(code);
}

/** 5xx and 429: the upstream is failing or asks to wait, so the same request may succeed later. */
export function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 429;
}

/** An upstream's answer berth did not expect: its status and, when its body held an OCI envelope, the first code and message. */
export interface UpstreamAnswer {
  readonly status: number;
  readonly code?: string | undefined;
  readonly message?: string | undefined;
}

/**
 * The one upstream-status mapper, for pulls, pushes and uploads in chunks alike. A 5xx is
 * UNAVAILABLE (502) and a 429 TOOMANYREQUESTS: transient, so fills resume, stale tags answer and
 * the write-behind queue waits them out. Every other answer is a refusal, permanent for
 * isTransient: 401 UNAUTHORIZED, 403 DENIED, 405 UNSUPPORTED, a 404 the caller's `notFound` (a
 * pull names what is unknown), else the upstream's own OCI code with its status, else UNSUPPORTED
 * with the upstream's 4xx (502 for a status that is no error at all, such as a redirect loop).
 */
export function upstreamStatusError(answer: UpstreamAnswer, ctx: { upstream: string; what: string; notFound?: OciError | undefined }): OciError {
  const { status } = answer;
  if (status === 404 && ctx.notFound) return ctx.notFound;
  const said = answer.code ? `: ${answer.code}${answer.message ? ` (${answer.message.slice(0, 300)})` : ''}` : '';
  const text = `upstream ${ctx.upstream} answered ${status} for ${ctx.what}${said}`;
  if (status >= 500) return new OciError('UNAVAILABLE', text, { status: 502 });
  if (status === 429) return new OciError('TOOMANYREQUESTS', text);
  if (status === 401) return new OciError('UNAUTHORIZED', text);
  if (status === 403) return new OciError('DENIED', text);
  if (status === 405) return new OciError('UNSUPPORTED', text);
  const refusal = status >= 400 && status < 500;
  const known = answer.code !== undefined && answer.code in ERROR_CODES ? (answer.code as ErrorCode) : undefined;
  // An upstream calling its refusal UNAVAILABLE or UNKNOWN must not make it look transient.
  if (refusal && known && known !== 'UNKNOWN' && known !== 'UNAVAILABLE' && known !== 'TOOMANYREQUESTS') return new OciError(known, text, { status });
  return new OciError('UNSUPPORTED', text, { status: refusal ? status : 502 });
}

/** The admin API's own codes (`/api/v1/`), beside the OCI codes it also answers with. */
export const ADMIN_ERROR_CODES = {
  UNAUTHORIZED: { status: 401, description: 'admin credentials missing or wrong' },
  INVALID_REQUEST: { status: 400, description: 'the request body or query is malformed' },
  FORBIDDEN: { status: 403, description: 'not a trusted caller (no credentials, not loopback trust), or a state-changing call from a foreign Origin' },
  NOT_FOUND: { status: 404, description: 'no such route or job' },
  METHOD_NOT_ALLOWED: { status: 405, description: 'the route does not take this method' },
  BODY_TOO_LARGE: { status: 413, description: 'request body over 1 MiB' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'a state-changing call without Content-Type: application/json' },
  INTERNAL: { status: 500, description: 'unexpected failure; see the berth log' },
} as const;

export type AdminErrorCode = keyof typeof ADMIN_ERROR_CODES;

/** An admin API error: `{"errors":[{"code","message"}]}` with this status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: AdminErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Exit statuses of the `berth` commands. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * A command cannot run as asked (bad configuration, bad arguments, no store where one is named).
 * Every such error is one of these, so `main` picks the exit status by type (exit 2) and prints
 * `report()`, never matching a message.
 */
export class UsageError extends Error {
  readonly exitCode: ExitCode = EXIT.USAGE;
  /** The command named at the start of the printed line, e.g. `berth cert generate`. */
  readonly command: string;
  constructor(message: string, command = 'berth') {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }

  /** The text printed on stderr. */
  report(): string {
    return `${this.command}: ${this.message}`;
  }
}

/** The config names a store that does not exist (a typo'd root must not look like an empty cache). */
export class StoreMissingError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = 'StoreMissingError';
  }
}
