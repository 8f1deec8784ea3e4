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

export function isOciError(err: unknown): err is OciError {
  return err instanceof OciError;
}
