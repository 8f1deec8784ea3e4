/** @module config/defaults — the value each config key takes when config.yml leaves it out. */

export const DEFAULT_REMOTE_URL = 'https://registry-1.docker.io';
/** Relative to the working directory, as `berth serve` documents it, with or without a file. */
export const DEFAULT_ROOT = 'berth-data';
export const DEFAULT_PORT = 5000;
export const DEFAULT_TAGTTL_MS = 60_000;
/** How long a pass-through access decision is reused before the upstream is asked again. */
export const DEFAULT_PASSTHROUGH_TTL_MS = 60_000;
export const DEFAULT_LOWWATERMARK = 0.8;
/** storage.reserve: a few MiB keep SQLite writing on a full disk (at most an eighth of the file system). */
export const DEFAULT_RESERVE_BYTES = 8 * 1024 * 1024;
/** Uploads idle this long are abandoned (distribution purges after 168h; an edge disk is smaller). */
export const DEFAULT_UPLOAD_AGE_MS = 60 * 60_000;
/** Kept ranges of a blob nobody finished: a day covers a node that restarts its lazily started containers tomorrow. */
export const DEFAULT_KEPT_RANGES_AGE_MS = 24 * 60 * 60_000;
/**
 * How long a blob's ranges stay quiet before the whole-blob fill they started runs (`rangequiet`,
 * docs/lazy-pulling.md). A lazy client reads a footer, a table of contents, then the chunks its
 * container touches, one request after another: a fill started in between would share the link
 * with the next of them.
 */
export const DEFAULT_RANGE_QUIET_MS = 1000;
export const DEFAULT_UPLOAD_PURGE_INTERVAL_MS = 10 * 60_000;
/** Connection bounds: generous for real clients, short enough that held sockets are reclaimed. */
export const DEFAULT_CONNECTION_LIMITS = {
  headersTimeoutMs: 30_000,
  idleTimeoutMs: 5 * 60_000,
  maxConnections: 4096,
  maxConnectionsPerClient: 256,
} as const;
/**
 * Each connection may hold a socket and a blob file: at most half the descriptors left after a
 * reserve for the store and the upstreams, so legitimate requests never meet EMFILE.
 */
export function defaultMaxConnections(fdLimit: number | undefined): number {
  if (fdLimit === undefined || !Number.isFinite(fdLimit)) return DEFAULT_CONNECTION_LIMITS.maxConnections;
  return Math.max(64, Math.min(DEFAULT_CONNECTION_LIMITS.maxConnections, Math.floor((fdLimit - 256) / 2)));
}
export const DEFAULT_TIMEOUTS = { connectMs: 5_000, firstByteMs: 30_000, idleMs: 30_000 } as const;
export const DEFAULT_WARM_INTERVAL_MS = 3_600_000;

/** `auth.token.expiration`: how long a token berth issues is valid (distribution's and Harbor's tokens last minutes). */
export const DEFAULT_TOKEN_EXPIRATION_MS = 5 * 60_000;
/** `auth.token.service`. */
export const DEFAULT_TOKEN_SERVICE = 'berth';
/** The token signing key berth generates in its root directory when `auth.token.key` is not set. */
export const TOKEN_KEY_FILE = 'token.key';
