/** @module upstream/tokens — bearer tokens fetched from a registry's token realm, cached per scope until expiry. */
import type { Dispatcher } from 'undici';
import { request } from '../util/undici.js';
import type { Logger } from 'pino';
import { UnreachableError } from '../oci/errors.js';
import { badGateway, unauthorized, unavailable } from '../oci/error-catalogue.js';
import type { Challenge } from './challenge.js';
import { realmAllowed } from './challenge.js';
import { PromiseFlight } from '../util/single-flight.js';

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** What a token request needs to know about the upstream it is for. */
export interface TokenContext {
  readonly upstreamName: string;
  readonly remoteurl: string;
  /** Realm hosts trusted besides the upstream's registrable domain (`tokenrealms`). */
  readonly allowedRealms?: readonly string[];
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
}

export interface TokenSourceOptions extends TokenContext {
  readonly username?: string;
  readonly password?: string;
  readonly now: () => number;
  /** Called after each token the realm issued (a refresh). */
  readonly onIssued?: () => void;
}

/** A token, or the realm's refusal of the credentials (401/403). */
export type TokenOutcome =
  { readonly kind: 'token'; readonly token: string; readonly lifetimeMs: number } | { readonly kind: 'rejected'; readonly status: number };

/** Refresh this long before the issuer's expiry so a token never dies mid-request. */
const EXPIRY_MARGIN_MS = 10_000;

/**
 * Asks the challenge's realm for a token for `scope` (none: just check the credentials, as
 * `docker login` does). The realm must be on the upstream's registrable domain or listed in
 * tokenrealms, else nothing is sent anywhere. Unreachable realms and 5xx throw UNAVAILABLE.
 */
export async function fetchToken(ctx: TokenContext, challenge: Challenge, scope: string | undefined, creds: Credentials | undefined): Promise<TokenOutcome> {
  const realm = challenge.params['realm'];
  if (!realm) throw badGateway(`upstream ${ctx.upstreamName} (${ctx.remoteurl}) sent a bearer challenge without a realm`);
  if (!realmAllowed(ctx.remoteurl, realm, ctx.allowedRealms)) {
    ctx.logger.error(
      { upstream: ctx.upstreamName, realm: safeLocation(realm) },
      'refused token realm: not on the upstream registry domain nor in its tokenrealms; no credentials sent',
    );
    throw badGateway(
      `upstream ${ctx.upstreamName} pointed berth to token realm ${safeLocation(realm)}, which is neither on the upstream's domain nor listed in its tokenrealms; credentials were not sent (if that is its token service, add the host to tokenrealms)`,
    );
  }
  const url = new URL(realm);
  if (challenge.params['service']) url.searchParams.set('service', challenge.params['service']);
  // Space-separated scopes (a mount reads one repository and writes another) go as one parameter each.
  for (const one of scope ? scope.split(' ') : []) url.searchParams.append('scope', one);
  const headers: Record<string, string> = creds ? { authorization: basicAuth(creds.username, creds.password) } : {};
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, { method: 'GET', headers, dispatcher: ctx.dispatcher });
  } catch (err) {
    throw new UnreachableError(`token service of upstream ${ctx.upstreamName} at ${url.origin} is unreachable: ${(err as Error).message}`);
  }
  if (res.statusCode === 401 || res.statusCode === 403) {
    await res.body.dump();
    return { kind: 'rejected', status: res.statusCode };
  }
  const text = await res.body.text();
  if (res.statusCode !== 200) throw unavailable(`token service of upstream ${ctx.upstreamName} answered ${res.statusCode}`);
  let body: { token?: string; access_token?: string; expires_in?: number };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw badGateway(`token service of upstream ${ctx.upstreamName} returned invalid JSON`);
  }
  const token = body.token ?? body.access_token;
  if (!token) throw badGateway(`token service of upstream ${ctx.upstreamName} returned no token`);
  // The spec's default lifetime is 60 s when expires_in is absent.
  const lifetimeMs = Math.max(0, (typeof body.expires_in === 'number' ? body.expires_in : 60) * 1000 - EXPIRY_MARGIN_MS);
  return { kind: 'token', token, lifetimeMs };
}

/** berth's own tokens for an upstream, cached per scope and fetched once for concurrent requests. */
export class TokenSource {
  private readonly cache = new Map<string, CachedToken>();
  private readonly pending = new PromiseFlight<string>();

  constructor(private readonly opts: TokenSourceOptions) {}

  /** A cached token for the scope, if still valid. */
  cached(scope: string): string | undefined {
    const hit = this.cache.get(scope);
    if (hit && hit.expiresAt > this.opts.now()) return hit.token;
    return undefined;
  }

  invalidate(scope: string): void {
    this.cache.delete(scope);
  }

  /** Fetches (or joins a fetch of) a token for the scope named by the challenge. */
  async fetch(challenge: Challenge, scope: string): Promise<string> {
    return this.pending.run(scope, () => this.request(challenge, scope));
  }

  private async request(challenge: Challenge, scope: string): Promise<string> {
    const { opts } = this;
    const creds = opts.username !== undefined ? { username: opts.username, password: opts.password ?? '' } : undefined;
    const outcome = await fetchToken(opts, challenge, scope, creds);
    if (outcome.kind === 'rejected') {
      throw unauthorized(
        `upstream ${opts.upstreamName} (${opts.remoteurl}) rejected berth's credentials${opts.username ? ` for user "${opts.username}"` : ' (none configured)'}: check the upstream's username and password`,
      );
    }
    this.cache.set(scope, { token: outcome.token, expiresAt: opts.now() + outcome.lifetimeMs });
    opts.onIssued?.();
    return outcome.token;
  }
}

export function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Origin and path of a URL, for logs and messages: never its query, which may carry secrets. */
function safeLocation(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}
