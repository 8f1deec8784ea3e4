/** @module auth/token-service — bearer tokens berth issues and checks itself (distribution's token protocol, `auth.token` without realm). */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Action } from './rules.js';

/** One grant of a token, as distribution's token spec writes it in the `access` claim. */
export interface TokenAccess {
  readonly type: string;
  readonly name: string;
  readonly actions: readonly string[];
}

/** A scope a client asked for: `repository:<name>:pull,push`. */
export interface Scope {
  readonly type: string;
  readonly name: string;
  readonly actions: readonly string[];
}

/** What a checked token says: who (undefined: anonymous) and what it grants. */
export interface TokenClaims {
  readonly user: string | undefined;
  readonly access: readonly TokenAccess[];
}

export interface IssuedToken {
  readonly token: string;
  readonly access_token: string;
  readonly expires_in: number;
  readonly issued_at: string;
}

export interface TokenOptions {
  readonly service: string;
  readonly expirationMs: number;
  /** PEM private key file (EC P-256 for ES256, RSA for RS256). */
  readonly keyFile: string;
  /** Create the key file when it does not exist (the default key in the root directory). */
  readonly generate: boolean;
  readonly now: () => number;
}

/** The issuer claim of berth's own tokens; the audience is the configured service. */
const ISSUER = 'berth';

/**
 * Signs and checks short-lived JWTs with one key. Workers of one berth share the root directory's
 * key file, and replicas of a site are given the same `key:` file (docs/design.md §7), so a token
 * issued by one is accepted by all.
 */
export class TokenService {
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  private readonly alg: 'ES256' | 'RS256';
  readonly service: string;

  constructor(private readonly opts: TokenOptions) {
    this.service = opts.service;
    this.privateKey = createPrivateKey(loadKey(opts.keyFile, opts.generate));
    this.publicKey = createPublicKey(this.privateKey);
    const type = this.privateKey.asymmetricKeyType;
    const curve = this.privateKey.asymmetricKeyDetails?.namedCurve;
    if (type === 'ec' && curve === 'prime256v1') this.alg = 'ES256';
    else if (type === 'rsa') this.alg = 'RS256';
    else throw new Error(`auth.token.key ${opts.keyFile}: a ${type ?? 'unknown'} key; allowed: an EC P-256 (ES256) or RSA (RS256) private key in PEM`);
  }

  /** A signed token for `user` (undefined: anonymous) granting `access`. */
  async issue(user: string | undefined, access: readonly TokenAccess[]): Promise<IssuedToken> {
    const nowMs = this.opts.now();
    const iat = Math.floor(nowMs / 1000);
    const expiresIn = Math.max(1, Math.floor(this.opts.expirationMs / 1000));
    // jose is loaded on first use: a berth that issues no tokens never holds it (docs/performance.md).
    const { SignJWT } = await import('jose');
    const token = await new SignJWT({ access: access.map((a) => ({ type: a.type, name: a.name, actions: [...a.actions] })) })
      .setProtectedHeader({ alg: this.alg, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(user ?? '')
      .setAudience(this.service)
      .setIssuedAt(iat)
      .setNotBefore(iat - 1)
      .setExpirationTime(iat + expiresIn)
      .setJti(randomUUID())
      .sign(this.privateKey);
    return { token, access_token: token, expires_in: expiresIn, issued_at: new Date(iat * 1000).toISOString() };
  }

  /** The token's claims, or undefined when its signature, issuer, audience or lifetime does not hold. */
  async verify(token: string): Promise<TokenClaims | undefined> {
    const { jwtVerify } = await import('jose');
    try {
      const { payload } = await jwtVerify(token, this.publicKey, {
        algorithms: [this.alg],
        issuer: ISSUER,
        audience: this.service,
        currentDate: new Date(this.opts.now()),
        requiredClaims: ['exp', 'sub'],
      });
      const access = Array.isArray(payload['access']) ? (payload['access'] as unknown[]).filter(isAccess) : [];
      return { user: payload.sub === '' ? undefined : payload.sub, access };
    } catch {
      return undefined;
    }
  }
}

/** Whether a token's grants cover `action` on the repository the client names. */
export function covers(access: readonly TokenAccess[], name: string, action: Action): boolean {
  return access.some((a) => a.type === 'repository' && a.name === name && (a.actions.includes(action) || a.actions.includes('*')));
}

/**
 * `repository:<name>:<actions>`; a name may hold a colon (a registry host with a port), so the
 * type ends at the first colon and the actions start after the last. Malformed scopes are left out.
 */
export function parseScopes(values: readonly string[]): Scope[] {
  const out: Scope[] = [];
  for (const value of values) {
    for (const scope of value.split(' ')) {
      const first = scope.indexOf(':');
      const last = scope.lastIndexOf(':');
      if (first <= 0 || last <= first + 1) continue;
      const actions = scope
        .slice(last + 1)
        .split(',')
        .filter((a) => a !== '');
      if (actions.length > 0) out.push({ type: scope.slice(0, first), name: scope.slice(first + 1, last), actions });
    }
  }
  return out;
}

function isAccess(v: unknown): v is TokenAccess {
  const a = v as Partial<TokenAccess> | null;
  return typeof a === 'object' && a !== null && typeof a.type === 'string' && typeof a.name === 'string' && Array.isArray(a.actions);
}

/** The key file's PEM; the default file is created on first start, once, even with several workers starting at once. */
function loadKey(file: string, generate: boolean): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if (!generate || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  mkdirSync(dirname(file), { recursive: true });
  // Written aside and linked into place: a worker starting at the same moment either wins the
  // link or reads the winner's key, never a half-written file.
  const temp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  writeFileSync(temp, pem, { mode: 0o600 });
  try {
    linkSync(temp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    rmSync(temp, { force: true });
  }
  return readFileSync(file, 'utf8');
}
