/** @module upstream/passthrough — asks an upstream whether a client's own credentials may pull (or push) a repository. */
import { createHash, randomBytes } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { request } from '../util/undici.js';
import type { Logger } from 'pino';
import type { OutageMode } from '../config/types.js';
import { OciError, isTransientStatus } from '../oci/errors.js';
import { unavailable } from '../oci/error-catalogue.js';
import { parseChallenge } from './challenge.js';
import type { RegistryClient } from './client.js';
import { upstreamPath } from './registry-api.js';
import { basicAuth, fetchToken, type Credentials } from './tokens.js';
import { PromiseFlight } from '../util/single-flight.js';

/** `unauthenticated`: no or wrong credentials (answer 401); `denied`: valid but without access (403). */
export type Verdict = 'allowed' | 'unauthenticated' | 'denied';
export type Action = 'pull' | 'push' | 'delete';

/** A request below the repository that needs the access in question, e.g. HEAD manifests/v1. */
export interface Probe {
  readonly method: 'HEAD' | 'GET';
  readonly path: string;
}

/** The cheapest upstream request needing the access a client's request needs. */
export const probes = {
  manifest: (reference: string): Probe => ({ method: 'HEAD', path: upstreamPath.manifest(reference) }),
  blob: (digest: string): Probe => ({ method: 'HEAD', path: upstreamPath.blob(digest) }),
  tags: (): Probe => ({ method: 'GET', path: `${upstreamPath.tags}?n=1` }),
} as const;

export interface PassthroughOptions {
  readonly ttlMs: number;
  readonly outage: OutageMode;
  readonly logger: Logger;
  readonly now: () => number;
}

interface Decision {
  readonly verdict: Verdict;
  readonly at: number;
}

/** Decisions kept (fresh and last-known); the oldest go first, so memory stays bounded. */
const MAX_DECISIONS = 10_000;

export class PassthroughChecker {
  private readonly decisions = new Map<string, Decision>();
  private readonly pending = new PromiseFlight<Verdict>();
  /** Keys hash the password with a per-process salt: no password is kept in memory as such. */
  private readonly salt = randomBytes(16);

  constructor(
    private readonly client: RegistryClient,
    private readonly opts: PassthroughOptions,
  ) {}

  /** May `creds` (none: anonymous) do `action` on `repository` upstream? Decisions are reused for ttlMs. */
  check(creds: Credentials | undefined, repository: string, action: Action, probe: Probe): Promise<Verdict> {
    return this.decide(this.key(creds, action, repository), () => this.ask(creds, repository, action, probe));
  }

  /** Are these credentials valid upstream at all (`docker login`)? */
  async login(creds: Credentials): Promise<boolean> {
    return (await this.decide(this.key(creds, 'login', ''), () => this.askLogin(creds))) === 'allowed';
  }

  private key(creds: Credentials | undefined, action: string, repository: string): string {
    const h = createHash('sha256').update(this.salt);
    for (const part of [creds?.username ?? '', creds?.password ?? '', action, repository]) h.update(part).update('\0');
    return h.digest('hex');
  }

  private async decide(key: string, ask: () => Promise<Verdict>): Promise<Verdict> {
    const { now, ttlMs, outage, logger } = this.opts;
    const known = this.decisions.get(key);
    if (known && now() - known.at < ttlMs) return known.verdict;
    return this.pending.run(key, async () => {
      try {
        const refusal = this.client.breaker.refusal();
        if (refusal) throw unavailable(refusal);
        const verdict = await ask();
        this.remember(key, verdict);
        return verdict;
      } catch (err) {
        if (!(err instanceof OciError) || err.code !== 'UNAVAILABLE') throw err;
        const name = this.client.name;
        if (outage === 'lastknown' && known) {
          logger.debug({ upstream: name, verdict: known.verdict, err: err.message }, 'upstream cannot check access; using the last known decision');
          return known.verdict;
        }
        throw unavailable(
          outage === 'deny'
            ? `access cannot be checked with upstream ${name} (${err.message}); its passthroughoutage is deny, so the cache refuses until the upstream answers`
            : `access cannot be checked with upstream ${name} (${err.message}) and there is no earlier decision for these credentials`,
        );
      }
    });
  }

  private remember(key: string, verdict: Verdict): void {
    this.decisions.delete(key);
    this.decisions.set(key, { verdict, at: this.opts.now() });
    if (this.decisions.size > MAX_DECISIONS) this.decisions.delete(this.decisions.keys().next().value as string);
  }

  private async ask(creds: Credentials | undefined, repository: string, action: Action, probe: Probe): Promise<Verdict> {
    const repo = this.client.upstreamRepository(repository);
    const url = `${this.client.remoteurl}/v2/${repo}/${probe.path}`;
    const first = await this.send(probe.method, url, {});
    if (first.status !== 401) return first.status === 403 ? (creds ? this.askBasic(creds, probe.method, url) : 'unauthenticated') : 'allowed';
    const challenge = parseChallenge(first.headers['www-authenticate']);
    if (challenge?.scheme !== 'bearer') return creds ? this.askBasic(creds, probe.method, url) : 'unauthenticated';
    const scope = `repository:${repo}:${action === 'pull' ? 'pull' : action === 'push' ? 'pull,push' : 'delete'}`;
    const outcome = await fetchToken(this.tokenContext(), challenge, scope, creds);
    if (outcome.kind === 'rejected') return 'unauthenticated';
    if (action !== 'pull') {
      // Checking push by trying it would change the upstream: read what the token grants instead.
      const wanted = action === 'push' ? ['pull', 'push'] : ['delete'];
      const granted = grantedActions(outcome.token, repo);
      return wanted.every((a) => granted.includes(a) || granted.includes('*')) ? 'allowed' : creds ? 'denied' : 'unauthenticated';
    }
    const res = await this.send(probe.method, url, { authorization: `Bearer ${outcome.token}` });
    if (res.status === 401 || res.status === 403) return creds ? 'denied' : 'unauthenticated';
    return 'allowed';
  }

  private async askBasic(creds: Credentials, method: string, url: string): Promise<Verdict> {
    const res = await this.send(method, url, { authorization: basicAuth(creds.username, creds.password) });
    if (res.status === 401) return 'unauthenticated';
    return res.status === 403 ? 'denied' : 'allowed';
  }

  private async askLogin(creds: Credentials): Promise<Verdict> {
    const url = `${this.client.remoteurl}/v2/`;
    const first = await this.send('GET', url, {});
    if (first.status !== 401) return 'allowed';
    const challenge = parseChallenge(first.headers['www-authenticate']);
    if (challenge?.scheme !== 'bearer') return this.askBasic(creds, 'GET', url);
    const outcome = await fetchToken(this.tokenContext(), challenge, undefined, creds);
    return outcome.kind === 'token' ? 'allowed' : 'unauthenticated';
  }

  private tokenContext() {
    const { client } = this;
    return {
      upstreamName: client.name,
      remoteurl: client.remoteurl,
      allowedRealms: client.tokenrealms,
      dispatcher: client.dispatcher,
      logger: this.opts.logger,
    };
  }

  /** One request with the client's credentials; 5xx, 429 and network failures are an outage. */
  private async send(
    method: string,
    url: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method: method, headers, dispatcher: this.client.dispatcher });
    } catch (err) {
      throw unavailable(`upstream ${this.client.name} is unreachable: ${(err as Error).message}`);
    }
    await res.body.dump();
    if (isTransientStatus(res.statusCode)) throw unavailable(`upstream ${this.client.name} answered ${res.statusCode}`);
    return { status: res.statusCode, headers: res.headers };
  }
}

/** The actions a registry JWT's `access` claim grants on a repository; [] for opaque tokens. */
export function grantedActions(token: string, repository: string): string[] {
  const payload = token.split('.')[1];
  if (!payload) return [];
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { access?: unknown };
    if (!Array.isArray(claims.access)) return [];
    return claims.access
      .filter(
        (a): a is { type: string; name: string; actions: unknown[] } =>
          typeof a === 'object' && a !== null && (a as { type?: unknown }).type === 'repository' && (a as { name?: unknown }).name === repository,
      )
      .flatMap((a) => (Array.isArray(a.actions) ? a.actions.filter((x): x is string => typeof x === 'string') : []));
  } catch {
    return [];
  }
}
