/** @module upstream/tokens — bearer tokens fetched from a registry's token realm, cached per scope until expiry. */
import type { Dispatcher } from 'undici';
import { request } from 'undici';
import type { Logger } from 'pino';
import { OciError } from '../oci/errors.js';
import type { Challenge } from './challenge.js';
import { realmAllowed } from './challenge.js';

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

export interface TokenSourceOptions {
  readonly upstreamName: string;
  readonly remoteurl: string;
  readonly username?: string;
  readonly password?: string;
  readonly allowedRealms?: readonly string[];
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  readonly now: () => number;
  /** Called after each token the realm issued (a refresh). */
  readonly onIssued?: () => void;
}

/** Refresh this long before the issuer's expiry so a token never dies mid-request. */
const EXPIRY_MARGIN_MS = 10_000;

export class TokenSource {
  private readonly cache = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<string>>();

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
    const key = scope;
    const inflight = this.pending.get(key);
    if (inflight) return inflight;
    const p = this.request(challenge, scope).finally(() => this.pending.delete(key));
    this.pending.set(key, p);
    return p;
  }

  private async request(challenge: Challenge, scope: string): Promise<string> {
    const { opts } = this;
    const realm = challenge.params['realm'];
    if (!realm) throw new OciError('UNAUTHORIZED', `upstream ${opts.upstreamName} (${opts.remoteurl}) sent a bearer challenge without a realm`);
    if (!realmAllowed(opts.remoteurl, realm, opts.allowedRealms)) {
      opts.logger.error({ upstream: opts.upstreamName, realm }, 'refusing token realm outside the upstream registry domain');
      throw new OciError('UNAUTHORIZED', `upstream ${opts.upstreamName} pointed berth to token realm ${safeOrigin(realm)}, which is not on the upstream's domain; credentials were not sent`);
    }
    const url = new URL(realm);
    if (challenge.params['service']) url.searchParams.set('service', challenge.params['service']);
    url.searchParams.append('scope', scope);
    const headers: Record<string, string> = {};
    if (opts.username !== undefined) headers['authorization'] = basicAuth(opts.username, opts.password ?? '');
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method: 'GET', headers, dispatcher: opts.dispatcher });
    } catch (err) {
      throw new OciError('UNAVAILABLE', `token service of upstream ${opts.upstreamName} at ${url.origin} is unreachable: ${(err as Error).message}`);
    }
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new OciError('UNAUTHORIZED', `upstream ${opts.upstreamName} (${opts.remoteurl}) rejected berth's credentials${opts.username ? ` for user "${opts.username}"` : ' (none configured)'}: check the upstream's username and password`, { status: 401 });
    }
    if (res.statusCode !== 200) {
      throw new OciError('UNAVAILABLE', `token service of upstream ${opts.upstreamName} answered ${res.statusCode}`);
    }
    let body: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new OciError('UNAVAILABLE', `token service of upstream ${opts.upstreamName} returned invalid JSON`);
    }
    const token = body.token ?? body.access_token;
    if (!token) throw new OciError('UNAVAILABLE', `token service of upstream ${opts.upstreamName} returned no token`);
    // The spec's default lifetime is 60 s when expires_in is absent.
    const lifetimeMs = Math.max(0, (typeof body.expires_in === 'number' ? body.expires_in : 60) * 1000 - EXPIRY_MARGIN_MS);
    this.cache.set(scope, { token, expiresAt: opts.now() + lifetimeMs });
    opts.onIssued?.();
    return token;
  }
}

export function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}
