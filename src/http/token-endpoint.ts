/** @module http/token-endpoint — `GET /auth/token` and the Bearer challenge pointing clients at it (`auth.token` issuer mode). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AccessControl } from '../auth/access.js';
import { parseScopes } from '../auth/token-service.js';
import { unauthorized } from '../oci/error-catalogue.js';
import type { OciError } from '../oci/errors.js';
import type { Target } from '../upstream/target.js';
import { sendJson } from './respond.js';

export const TOKEN_PATH = '/auth/token';

/** distribution's token endpoint: JSON `{token, access_token, expires_in, issued_at}`; never cached by a proxy. */
export async function serveToken(access: AccessControl, req: IncomingMessage, res: ServerResponse, url: URL, resolve: (name: string) => Target): Promise<void> {
  const scopes = parseScopes(url.searchParams.getAll('scope'));
  const issued = await access.issueToken(req.headers.authorization, scopes, resolve, req.socket.remoteAddress);
  res.setHeader('Cache-Control', 'no-store');
  sendJson(res, 200, issued, req.method === 'HEAD');
}

/**
 * The same 401 with a Bearer challenge naming berth's own token endpoint, as the client reached
 * it (its Host and scheme), and the scope the request needs: Docker only fetches tokens when
 * `/v2/` challenges with Bearer, and then pulls anonymously with a pull-scoped token.
 */
export function bearerChallenge(err: OciError, req: IncomingMessage, service: string, scope: string | undefined, ns?: string): OciError {
  const scheme = (req.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http';
  const host = (req.headers.host ?? 'localhost').replace(/["\\\s]/g, '');
  const quoted = (v: string) => v.replace(/["\\]/g, '');
  // A mirror request's ns= goes along, so the token is granted for the upstream the request is routed to.
  const query = ns ? `?ns=${encodeURIComponent(ns)}` : '';
  const params = [`realm="${scheme}://${host}${TOKEN_PATH}${quoted(query)}"`, `service="${quoted(service)}"`];
  if (scope) params.push(`scope="${quoted(scope)}"`);
  return unauthorized(err.message, `Bearer ${params.join(',')}`);
}

/** The scope a repository request needs: pull to read, pull and push to write, as Docker asks for them. */
export function scopeFor(name: string, action: string): string {
  return `repository:${name}:${action === 'pull' ? 'pull' : action === 'push' ? 'pull,push' : action}`;
}
