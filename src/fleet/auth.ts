/** @module fleet/auth — the hub's Bearer token: sites, Harbor and event senders present it. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError, type AdminCredentials } from '../http/admin-io.js';
import { FailureLimiter } from '../auth/failures.js';

const digestOf = (s: string) => createHash('sha256').update(s).digest();

/** The token a request carries: `Bearer T`, or HTTP basic auth with T as the password (Harbor's BASIC mode). */
function presented(req: IncomingMessage): { token?: string; basic?: { user: string; pass: string } } {
  const header = req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return { token: bearer[1]! };
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!basic) return {};
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return {};
  return { token: decoded.slice(colon + 1), basic: { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) } };
}

const same = (a: string, b: string) => timingSafeEqual(digestOf(a), digestOf(b));

/**
 * Throws 401 unless the request carries the hub's token (compared in constant time). The admin
 * credentials are accepted too where `admin` is given, so the dashboard can read the sites.
 */
export function requireHubToken(req: IncomingMessage, token: string, admin?: AdminCredentials): void {
  const p = presented(req);
  if (p.token !== undefined && same(p.token, token)) return;
  if (admin && p.basic && same(p.basic.user, admin.username) && same(p.basic.pass, admin.password)) return;
  throw new ApiError(
    401,
    'UNAUTHORIZED',
    p.token === undefined
      ? 'the hub needs its token: send "Authorization: Bearer <token>" with the token of the hub section of its config'
      : "the token was not accepted: it must be the token of the hub section of the hub's config",
    { 'WWW-Authenticate': 'Bearer realm="berth hub"' },
  );
}

/**
 * The check at every hub's door (the lead's and, with replicas, each one forwarding to it). The
 * admin password also opens the read-only views: an address guessing it waits, as at the admin
 * API. Only password tries count: the hub token is a long random secret, and counting its misses
 * would let one misconfigured site lock out every site behind the same address.
 */
export function hubGate(token: string, admin: AdminCredentials | undefined, now: () => number): (req: IncomingMessage, readOnly: boolean) => void {
  const failures = new FailureLimiter(now);
  return (req, readOnly) => {
    const address = req.socket.remoteAddress ?? '';
    const password = readOnly && admin !== undefined && /^Basic\s/i.test(req.headers.authorization ?? '');
    if (password) failures.check(address, 'hub-admin');
    try {
      requireHubToken(req, token, readOnly ? admin : undefined);
    } catch (err) {
      if (password) failures.fail(address, 'hub-admin');
      throw err;
    }
    if (password) failures.succeed(address, 'hub-admin');
  };
}
