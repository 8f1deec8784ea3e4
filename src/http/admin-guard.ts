/** @module http/admin-guard — who may use the admin API: credentials with failed-login backoff, trusted loopback callers, and the cross-site checks on state-changing calls. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { FailureLimiter } from '../auth/failures.js';
import { MAX_PASSWORD_BYTES } from '../auth/htpasswd.js';
import { ApiError, clientAddress, type AdminCredentials } from './admin-io.js';

export interface AdminAccess {
  /** `admin.username` / `admin.password`: HTTP basic auth opens the API. */
  readonly credentials?: AdminCredentials;
  /** `admin.open: true`: anyone who reaches the listen address may use the API. */
  readonly open?: boolean;
  /** Neither `auth:` nor `admin:`: anyone may read (GET, HEAD); changing state still needs a trusted caller. */
  readonly openReads?: boolean;
  /** `admin.trustloopback`: a trusted loopback caller (see trustedLoopback) needs no credentials. */
  readonly trustLoopback?: boolean;
  readonly now: () => number;
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);

/** Headers a proxy adds: a request carrying any of them came through one, whatever its peer address says. */
const FORWARDING_HEADERS = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-real-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'via',
];

const LOOPBACK_HOST = /^(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/i;

const CHALLENGE = { 'WWW-Authenticate': 'Basic realm="berth admin", charset="UTF-8"' };

export function isStateChanging(method: string | undefined): boolean {
  return STATE_CHANGING.has(method ?? '');
}

function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === '::1';
}

/**
 * A caller on this host that names this host: the peer is loopback, `Host` is localhost,
 * 127.0.0.1 or [::1] (a DNS-rebound page names its own host), and no proxy header is present
 * (behind a proxy on this host every client's peer address is loopback).
 */
export function trustedLoopback(req: IncomingMessage): boolean {
  if (!isLoopbackAddress(clientAddress(req))) return false;
  if (!LOOPBACK_HOST.test(req.headers.host ?? '')) return false;
  return !FORWARDING_HEADERS.some((h) => req.headers[h] !== undefined);
}

/**
 * A state-changing call must come from a page of this origin (or from no page at all) and carry
 * JSON: a cross-site form or `text/plain` fetch can send neither without a CORS preflight, which
 * berth never grants.
 */
export function checkStateChange(req: IncomingMessage, bodyType = 'application/json'): void {
  const origin = req.headers.origin;
  if (origin === undefined ? req.headers['sec-fetch-site'] === 'cross-site' : !sameOrigin(origin, req.headers.host)) {
    throw new ApiError(
      403,
      'FORBIDDEN',
      `a state-changing admin call must come from the dashboard's own origin or from no web page (Origin ${JSON.stringify((origin ?? 'absent, Sec-Fetch-Site: cross-site').slice(0, 200))} does not match Host)`,
    );
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== bodyType) {
    throw new ApiError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `${req.method ?? ''} calls on ${(req.url ?? '').split('?')[0]!.slice(0, 200)} take Content-Type: ${bodyType} (got ${JSON.stringify(type.slice(0, 100))})`,
    );
  }
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    const o = new URL(origin);
    if (o.protocol !== 'http:' && o.protocol !== 'https:') return false;
    // Parsed with the origin's scheme, so an explicit default port compares equal to none.
    return new URL(`${o.protocol}//${host}`).host === o.host;
  } catch {
    // "null" (a sandboxed or file: page) and anything unparsable are foreign.
    return false;
  }
}

const digestOf = (s: string) => createHash('sha256').update(s).digest();

/** Decides whether a request may use the admin API; failed logins make the guessing address wait. */
export class AdminGate {
  private readonly failures: FailureLimiter;

  constructor(private readonly access: AdminAccess) {
    this.failures = new FailureLimiter(access.now);
  }

  /** Throws 401, 403 or 429 unless the caller may make this request. */
  admit(req: IncomingMessage): void {
    const { credentials, open, openReads, trustLoopback } = this.access;
    if (open) return;
    if (credentials && req.headers.authorization !== undefined) return this.login(req, credentials);
    if (trustLoopback && trustedLoopback(req)) return;
    if (openReads && !isStateChanging(req.method)) return;
    if (credentials) {
      throw new ApiError(
        401,
        'UNAUTHORIZED',
        'the admin API needs credentials: send HTTP basic auth with the username and password of the admin section of the config',
        CHALLENGE,
      );
    }
    throw new ApiError(
      403,
      'FORBIDDEN',
      trustLoopback
        ? `the admin API ${openReads ? 'changes state' : 'answers'} only for callers on this host (loopback address, Host localhost, 127.0.0.1 or [::1], no proxy headers) while admin credentials are not set: set admin.username and admin.password (or admin.open: true)`
        : `the admin API has no credentials and admin.trustloopback is off, so no caller may ${openReads ? 'change state' : 'use it'}: set admin.username and admin.password, or admin.trustloopback: true for callers on this host`,
    );
  }

  private login(req: IncomingMessage, credentials: AdminCredentials): void {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? '');
    // Another scheme (a hub's Bearer token) is no guess at the admin password.
    if (!m)
      throw new ApiError(
        401,
        'UNAUTHORIZED',
        'the admin API needs credentials: send HTTP basic auth with the username and password of the admin section of the config',
        CHALLENGE,
      );
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon >= 0 ? decoded.slice(0, colon) : '';
    const pass = colon >= 0 ? decoded.slice(colon + 1) : '';
    const address = clientAddress(req) ?? '';
    this.failures.check(address, user);
    const userOk = timingSafeEqual(digestOf(user), digestOf(credentials.username));
    const passOk = timingSafeEqual(digestOf(pass), digestOf(credentials.password));
    if (userOk && passOk && Buffer.byteLength(pass) <= MAX_PASSWORD_BYTES) {
      this.failures.succeed(address, user);
      return;
    }
    this.failures.fail(address, user);
    throw new ApiError(
      401,
      'UNAUTHORIZED',
      'admin credentials were not accepted: check the username and password set in the admin section of the config',
      CHALLENGE,
    );
  }
}
