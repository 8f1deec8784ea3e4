/** @module auth/access — who a client is (htpasswd, or its upstream credentials) and whether it may do what it asks. */
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/types.js';
import { type OciError } from '../oci/errors.js';
import { accessDenied, unauthorized } from '../oci/error-catalogue.js';
import type { Target, Upstream } from '../upstream/target.js';
import { PassthroughChecker, type Probe } from '../upstream/passthrough.js';
import type { Credentials } from '../upstream/tokens.js';
import { Htpasswd } from './htpasswd.js';
import type { FailureLimiter } from './failures.js';
import { ANONYMOUS, Rules, type Action } from './rules.js';
import { TokenService, covers, type IssuedToken, type Scope, type TokenAccess } from './token-service.js';

export interface AccessRequest {
  readonly target: Target;
  readonly action: Action;
  /** What a pass-through check asks the upstream (a request needing the same access). */
  readonly probe: Probe;
  /** The client's address, for the failed-login backoff. */
  readonly client?: string;
  /** The repository as the client names it (a token's grants name it so); default target.repository. */
  readonly name?: string;
}

export interface AccessDeps {
  readonly config: BerthConfig;
  readonly upstreams: readonly Upstream[];
  readonly logger: Logger;
  readonly now: () => number;
}

/**
 * Three layers, each optional: `auth.htpasswd` says who a client is; `auth.rules` what each user
 * (or `anonymous`) may do per upstream and repository; an upstream with `passthroughauth` decides
 * itself, from the client's own credentials, and htpasswd and rules do not apply to it.
 */
export class AccessControl {
  private readonly htpasswd: Htpasswd | undefined;
  private readonly rules: Rules | undefined;
  private readonly passthrough = new Map<string, PassthroughChecker>();
  private readonly realm: string;
  /** `auth.token` without realm: berth's own bearer tokens (docs/design.md §7). */
  readonly tokens: TokenService | undefined;

  /** Whether the target's upstream decides access itself (`passthroughauth`): its 401s keep the Basic challenge. */
  passesThrough(target: Target): boolean {
    return target.upstream !== undefined && this.passthrough.has(target.upstream.config.name);
  }

  /** Failed logins per address and user (with htpasswd), shared among serving workers. */
  get failures(): FailureLimiter | undefined {
    return this.htpasswd?.failures;
  }

  constructor(deps: AccessDeps) {
    const { config, logger, now } = deps;
    const auth = config.auth;
    this.realm = auth?.htpasswd?.realm ?? 'berth';
    if (auth?.htpasswd) {
      this.htpasswd = new Htpasswd(auth.htpasswd.path, logger, now);
      const n = this.htpasswd.load();
      if (n === 0) logger.warn({ file: auth.htpasswd.path }, 'htpasswd file holds no usable users: every authenticated request will be refused');
      else logger.info({ file: auth.htpasswd.path, users: n, unknownUserCost: this.htpasswd.dummyCost }, 'htpasswd loaded');
    }
    if (auth?.rules) this.rules = new Rules(auth.rules);
    if (auth?.token) {
      const t = auth.token;
      this.tokens = new TokenService({ service: t.service, expirationMs: t.expirationMs, keyFile: t.key, generate: t.generated, now });
      logger.info({ service: t.service, key: t.key, expirationMs: t.expirationMs }, 'issuing bearer tokens at /auth/token');
    }
    for (const u of deps.upstreams) {
      const p = u.config.passthrough;
      if (p) this.passthrough.set(u.config.name, new PassthroughChecker(u.client, { ...p, logger: logger.child({ upstream: u.config.name }), now }));
    }
  }

  /** Files to watch for changes. */
  get files(): string[] {
    return this.htpasswd ? [this.htpasswd.path] : [];
  }

  reload(): void {
    this.htpasswd?.reload();
  }

  /** Stops the password-check workers. */
  async close(): Promise<void> {
    await this.htpasswd?.close();
  }

  /** No layer configured: every request is allowed without looking at credentials. */
  get open(): boolean {
    return !this.htpasswd && !this.rules && !this.tokens && this.passthrough.size === 0;
  }

  /** Anonymous `GET /v2/` is challenged, so `docker login` asks for (and checks) credentials. */
  private get loginRequired(): boolean {
    return this.htpasswd !== undefined || this.tokens !== undefined || this.passthrough.size > 0;
  }

  /** Throws 401/403 unless the request is allowed; returns the user name for the access log. */
  async authorize(authorization: string | undefined, req: AccessRequest): Promise<string | undefined> {
    if (this.open) return undefined;
    const { target, action } = req;
    const checker = target.upstream && this.passthrough.get(target.upstream.config.name);
    // berth's tokens never stand for a pass-through upstream's account: those need the client's Basic credentials.
    const bearer = !checker && this.tokens && parseBearer(authorization);
    if (bearer) return this.authorizeToken(bearer, req);
    const creds = parseBasic(authorization);
    if (checker) {
      const verdict = await checker.check(creds, target.repository, action, req.probe);
      if (verdict === 'allowed') return creds?.username ?? ANONYMOUS;
      if (verdict === 'unauthenticated') {
        throw this.challenge(
          creds
            ? `upstream ${target.upstream.config.name} did not accept these credentials for ${target.repository}: log in with your account on that registry`
            : `${action} access to ${target.repository} needs your credentials for upstream ${target.upstream.config.name}: docker login to this registry with them`,
        );
      }
      throw denied(creds?.username, action, target, `upstream ${target.upstream.config.name} does not grant it to this account`);
    }
    const user = await this.identify(creds, req.client);
    if (this.allows(user, target, action)) return user ?? ANONYMOUS;
    if (user === undefined) throw this.challenge(`${action} access to ${target.repository} needs authentication: docker login to this registry`);
    throw denied(user, action, target, this.rules ? 'no auth.rules entry allows it' : 'not allowed');
  }

  /**
   * A bearer token must be valid, cover the action on the repository as the client names it, and
   * its user must still be allowed by the rules (they may have changed since it was issued). A
   * token that falls short while the rules would allow is a 401, so the client fetches a new one.
   */
  private async authorizeToken(token: string, req: AccessRequest): Promise<string> {
    const { target, action } = req;
    const claims = await this.tokens?.verify(token);
    if (!claims) throw this.challenge('the bearer token is invalid or expired: fetch a new one from /auth/token');
    const allowed = this.allows(claims.user, target, action);
    if (allowed && covers(claims.access, req.name ?? target.repository, action)) return claims.user ?? ANONYMOUS;
    if (allowed || claims.user === undefined)
      throw this.challenge(`${action} access to ${target.repository} needs a token granting it: docker login to this registry`);
    throw denied(claims.user, action, target, this.rules ? 'no auth.rules entry allows it' : 'not allowed');
  }

  /**
   * `GET /auth/token`: a token for what the client may do of what it asks. Anonymous clients get
   * what the rules grant `anonymous`; credentials are checked against htpasswd (failures count in
   * the backoff) and wrong ones are a 401, never an anonymous token. Pass-through repositories are
   * left out: their access is the upstream's to decide.
   */
  async issueToken(authorization: string | undefined, scopes: readonly Scope[], resolve: (name: string) => Target, client?: string): Promise<IssuedToken> {
    if (!this.tokens) throw new Error('auth.token is not in issuer mode');
    const creds = parseBasic(authorization);
    if (creds && !this.htpasswd) throw this.challenge('this registry has no users (auth.htpasswd); ask for a token without credentials');
    const user = await this.identify(creds, client);
    const access: TokenAccess[] = [];
    for (const scope of scopes) {
      if (scope.type !== 'repository') continue;
      let target: Target;
      try {
        target = resolve(scope.name);
      } catch {
        continue;
      }
      if (target.upstream && this.passthrough.has(target.upstream.config.name)) continue;
      const actions = [...new Set(scope.actions)].filter((a): a is Action => (a === 'pull' || a === 'push' || a === 'delete') && this.allows(user, target, a));
      if (actions.length > 0) access.push({ type: 'repository', name: scope.name, actions });
    }
    return this.tokens.issue(user, access);
  }

  /**
   * Whether the client may pull the repository, as an answer rather than a 401/403: a pushed
   * manifest may name content held under another repository only then. Pass-through upstreams
   * answer no: each repository holding a digest would cost a question to the upstream.
   */
  async mayPull(authorization: string | undefined, target: Target, client?: string): Promise<boolean> {
    if (this.open) return true;
    if (target.upstream && this.passthrough.has(target.upstream.config.name)) return false;
    try {
      return this.allows(await this.caller(authorization, client), target, 'pull');
    } catch {
      return false;
    }
  }

  /** `GET /v2/`: checks credentials when given; challenges anonymous clients when logins exist. */
  async base(authorization: string | undefined, upstream: Upstream | undefined, client?: string): Promise<void> {
    if (this.open) return;
    const bearer = this.tokens && parseBearer(authorization);
    if (bearer) {
      if (await this.tokens?.verify(bearer)) return;
      throw this.challenge('the bearer token is invalid or expired: fetch a new one from /auth/token');
    }
    const creds = parseBasic(authorization);
    if (!creds) {
      if (this.loginRequired) throw this.challenge('authentication required: docker login to this registry');
      return;
    }
    if (this.htpasswd && (await this.htpasswd.verify(creds.username, creds.password, client))) return;
    // Only the upstream this request is routed to sees the credentials, never the others.
    const checker = upstream && this.passthrough.get(upstream.config.name);
    if (checker && (await checker.login(creds))) return;
    if (this.htpasswd || checker) throw this.challenge('invalid username or password');
  }

  /**
   * `GET /v2/_catalog`: which repositories (as clients name them) this client may see. Undefined:
   * all. Pass-through repositories are left out: listing them would need one upstream call each.
   */
  async catalogFilter(authorization: string | undefined, resolve: (name: string) => Target, client?: string): Promise<((name: string) => boolean) | undefined> {
    if (this.open) return undefined;
    const user = await this.caller(authorization, client);
    if (user === undefined && this.loginRequired && !this.rules?.anonymousAllowed)
      throw this.challenge('the catalog needs authentication: docker login to this registry');
    return (name) => {
      try {
        const target = resolve(name);
        if (target.upstream && this.passthrough.has(target.upstream.config.name)) return false;
        return this.allows(user, target, 'pull');
      } catch {
        return false;
      }
    };
  }

  /** The user a bearer token names or Basic credentials prove; undefined for anonymous. */
  private async caller(authorization: string | undefined, client: string | undefined): Promise<string | undefined> {
    const bearer = this.tokens && parseBearer(authorization);
    if (!bearer) return this.identify(parseBasic(authorization), client);
    const claims = await this.tokens?.verify(bearer);
    if (!claims) throw this.challenge('the bearer token is invalid or expired: fetch a new one from /auth/token');
    return claims.user;
  }

  /** The htpasswd user, or undefined for anonymous; wrong credentials are a 401, not anonymous. */
  private async identify(creds: Credentials | undefined, client: string | undefined): Promise<string | undefined> {
    if (!creds || !this.htpasswd) return undefined;
    if (await this.htpasswd.verify(creds.username, creds.password, client)) return creds.username;
    throw this.challenge('invalid username or password');
  }

  private allows(user: string | undefined, target: Target, action: Action): boolean {
    if (this.rules) return this.rules.allows(user, target.key, target.repository, action);
    return this.htpasswd ? user !== undefined : true;
  }

  private challenge(message: string): OciError {
    return unauthorized(message, `Basic realm="${this.realm.replace(/["\\]/g, '')}", charset="UTF-8"`);
  }
}

function denied(user: string | undefined, action: Action, target: Target, why: string): OciError {
  const who = user === undefined ? 'anonymous clients' : `user "${user}"`;
  const where = target.upstream ? ` of upstream ${target.upstream.config.name}` : '';
  return accessDenied(`${who} may not ${action} ${target.repository}${where}: ${why}`, { name: target.repository, action });
}

/** The token of `Authorization: Bearer …`. */
export function parseBearer(header: string | undefined): string | undefined {
  const m = header ? /^\s*bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header) : null;
  return m?.[1];
}

/** Credentials from `Authorization: Basic …`; other schemes count as none. */
export function parseBasic(header: string | undefined): Credentials | undefined {
  const m = header ? /^\s*basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header) : null;
  if (!m?.[1]) return undefined;
  const raw = Buffer.from(m[1], 'base64').toString('utf8');
  const i = raw.indexOf(':');
  // containers/image answers a Basic challenge with an empty user and password when it has none: that is anonymous.
  if (i < 0 || raw === ':') return undefined;
  return { username: raw.slice(0, i), password: raw.slice(i + 1) };
}
