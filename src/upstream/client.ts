/** @module upstream/client — one central registry over HTTP(S): auth challenges, redirects, timeouts; no disk. */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { request } from '../util/undici.js';
import type { Logger } from 'pino';
import type { UpstreamConfig } from '../config/types.js';
import { type OciError, UnreachableError, UpstreamClosedError, isClosedPoolError } from '../oci/errors.js';
import { badGateway, loopDetected, unauthorized } from '../oci/error-catalogue.js';
import { parseChallenge } from './challenge.js';
import { TokenSource, basicAuth } from './tokens.js';
import { CircuitBreaker } from './breaker.js';
import { upstreamAgent } from './connection-pool.js';
import { classify, describeConfigProblem, describeTrustProblem, errorCode, peerCertificate, problemLine } from './trust.js';
import { INSTANCE_HEADER, VIA_HEADER, loopMessage } from './loop.js';
import { runChecks, type CheckOptions, type CheckResult } from './checks.js';
import type { ByteBudget, WorkPriority } from './budget.js';
import { meteredInterceptor } from './metered.js';

export interface UpstreamTimeouts {
  readonly connectMs: number;
  readonly firstByteMs: number;
  readonly idleMs: number;
}

/** Failures in a row that mark an upstream down, and how often a down upstream is probed. */
export const BREAKER_THRESHOLD = 3;
export const PROBE_INTERVAL_MS = 5_000;

export interface UpstreamRequest {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly repository: string;
  /** Path below the repository, e.g. `manifests/v1`, `blobs/sha256:…`, `tags/list?n=10`. */
  readonly path: string;
  /** A URL the upstream handed out (an upload Location), used instead of repository + path. */
  readonly url?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Ask for push access: token scope `repository:NAME:pull,push`. */
  readonly push?: boolean;
  /** Repositories read from as well (the source of a cross-repository mount). */
  readonly pullFrom?: readonly string[];
  /** The body; a function so it can be sent again after an auth challenge. */
  readonly body?: () => Buffer | Readable;
  /**
   * The upstream is known to have what this asks for (a tag berth has seen, a transfer being
   * resumed), so a 5xx answer is evidence of an outage. Otherwise a 5xx is about this request
   * alone (a layer asked for as a manifest, say) and must not open the breaker for everyone.
   */
  readonly known?: boolean;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Dispatcher.ResponseData['body'];
}

/** What the client reports for metrics. */
export interface UpstreamObserver {
  tokenRefreshed(upstream: string): void;
}

/** How long the description of an untrusted certificate is reused before it is read again. */
const TRUST_NOTE_MS = 30_000;

const MAX_REDIRECTS = 5;
/** How long an upstream whose referrers route is missing is asked for the referrers tag alone (it may be upgraded meanwhile). */
const REFERRERS_API_RECHECK_MS = 10 * 60_000;

/**
 * Failures before any connection existed: the link or the host is down, not one request. The
 * breaker opens on the first of these (a reset or a timeout mid-answer still needs a run of them).
 */
const NO_CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EAI_AGAIN',
]);
const DOCKER_HUB_HOSTS = new Set(['registry-1.docker.io', 'index.docker.io', 'docker.io']);

export class RegistryClient {
  readonly name: string;
  readonly remoteurl: string;
  readonly tokenrealms: readonly string[];
  /** Connection pool with this upstream's TLS settings (and WAN budget); also used for checks with clients' credentials. */
  readonly dispatcher: Dispatcher;
  private readonly tokens: TokenSource;
  /** Learned from the first challenge, so later requests authenticate up front. */
  private scheme: 'none' | 'bearer' | 'basic' = 'none';
  private readonly isDockerHub: boolean;
  readonly breaker: CircuitBreaker;
  /** The latest start-up (or doctor) checks, for /readyz and /api/v1/upstreams. */
  checks: readonly CheckResult[] | undefined;
  private trustNote: { at: number; text: Promise<{ message: string; fix: string }> } | undefined;
  /** Until when this upstream is taken to have no referrers API, so a referrers lookup costs one round trip, not two. */
  private noReferrersApiUntil = 0;
  private readonly connectMs: number;
  private readonly now: () => number;

  constructor(
    private readonly config: UpstreamConfig,
    timeouts: UpstreamTimeouts,
    private readonly logger: Logger,
    now: () => number,
    observer?: UpstreamObserver,
    /** This berth's instance id: sent upstream and looked for in answers, so berth never waits on itself. */
    private readonly instance?: string,
    /** `ratelimit` / `backgroundwindow`: every byte to and from this upstream passes the budget. */
    metering?: { readonly budget: ByteBudget; readonly priority: WorkPriority },
  ) {
    this.connectMs = timeouts.connectMs;
    this.now = now;
    this.name = config.name;
    this.remoteurl = config.remoteurl;
    this.tokenrealms = config.tokenrealms;
    this.isDockerHub = DOCKER_HUB_HOSTS.has(new URL(config.remoteurl).hostname);
    const agent = upstreamAgent(config, timeouts);
    this.dispatcher = metering ? agent.compose(meteredInterceptor(metering.budget, metering.priority)) : agent;
    this.tokens = new TokenSource({
      upstreamName: config.name,
      remoteurl: config.remoteurl,
      username: config.username,
      password: config.password,
      allowedRealms: config.tokenrealms,
      dispatcher: this.dispatcher,
      logger,
      now,
      onIssued: () => observer?.tokenRefreshed(config.name),
    });
    this.breaker = new CircuitBreaker({
      name: config.name,
      threshold: BREAKER_THRESHOLD,
      probeIntervalMs: PROBE_INTERVAL_MS,
      probe: () => this.probe(),
      logger,
      now,
    });
  }

  /** True while this upstream's referrers route is known to be missing (see noteNoReferrersApi). */
  get lacksReferrersApi(): boolean {
    return this.now() < this.noReferrersApiUntil;
  }

  /** Its referrers route answered a 404 that is not a registry error (no such route): use the referrers tag for a while. */
  noteNoReferrersApi(): void {
    this.noReferrersApiUntil = this.now() + REFERRERS_API_RECHECK_MS;
  }

  /** Called once no client is left to serve: requests still open upstream are abandoned, not awaited. */
  async close(): Promise<void> {
    this.breaker.stop();
    await this.dispatcher.destroy();
  }

  /** DNS, connect, TLS trust, loop, credentials and token realm, one result each (start-up, doctor). */
  async check(listens?: CheckOptions['listens']): Promise<readonly CheckResult[]> {
    this.checks = await runChecks(this.config, { connectMs: this.connectMs, dispatcher: this.dispatcher, instance: this.instance, listens });
    return this.checks;
  }

  /** Any HTTP answer from /v2/ (401 included) means the upstream is reachable. */
  private async probe(): Promise<boolean> {
    try {
      const res = await request(`${this.remoteurl}/v2/`, { method: 'GET', headers: this.viaHeader(), dispatcher: this.dispatcher });
      await res.body.dump();
      return res.statusCode < 500;
    } catch {
      return false;
    }
  }

  /** Docker Hub keeps official images under `library/`; clients may omit it. */
  upstreamRepository(repository: string): string {
    return this.isDockerHub && !repository.includes('/') ? `library/${repository}` : repository;
  }

  /** Sends a request, answering one auth challenge; the caller owns the returned body. Other folders use upstream/registry-api's typed operations. */
  async send(req: UpstreamRequest): Promise<UpstreamResponse> {
    const refusal = this.breaker.refusal();
    if (refusal) throw new UnreachableError(refusal);
    const repository = this.upstreamRepository(req.repository);
    const url = req.url ?? `${this.remoteurl}/v2/${repository}/${req.path}`;
    // A handed-out URL on another origin gets no credentials, as across redirects.
    if (new URL(url).origin !== new URL(this.remoteurl).origin) return this.sendWithRedirects(req.method, url, { ...req.headers }, req.body, req.known);
    // Space-separated scopes become one `scope` parameter each at the token realm.
    const scope = [
      `repository:${repository}:${req.push ? 'pull,push' : 'pull'}`,
      ...(req.pullFrom ?? []).map((r) => `repository:${this.upstreamRepository(r)}:pull`),
    ].join(' ');
    let res = await this.sendWithRedirects(req.method, url, { ...req.headers, ...this.authHeader(scope) }, req.body, req.known);
    if (res.status !== 401) return res;

    const challenge = parseChallenge(res.headers['www-authenticate']);
    await res.body.dump();
    if (challenge?.scheme === 'bearer') {
      this.scheme = 'bearer';
      this.tokens.invalidate(scope);
      const token = await this.tokens.fetch(challenge, scope);
      res = await this.sendWithRedirects(req.method, url, { ...req.headers, authorization: `Bearer ${token}` }, req.body, req.known);
    } else if (challenge?.scheme === 'basic' && this.config.username !== undefined) {
      this.scheme = 'basic';
      res = await this.sendWithRedirects(req.method, url, { ...req.headers, ...this.authHeader(scope) }, req.body, req.known);
    }
    if (res.status === 401) {
      await res.body.dump();
      throw unauthorized(
        this.config.username === undefined
          ? `upstream ${this.name} (${this.remoteurl}) requires credentials: set username and password for it`
          : `upstream ${this.name} (${this.remoteurl}) rejected berth's credentials for user "${this.config.username}": check its username and password`,
      );
    }
    return res;
  }

  private viaHeader(): Record<string, string> {
    return this.instance !== undefined ? { [VIA_HEADER]: this.instance } : {};
  }

  /**
   * Outages count towards the breaker; trust and configuration errors do not (they repeat until
   * the config changes, and waiting would not help): they name the certificate and the key to set.
   */
  private async networkFailure(err: unknown, startedAt: number): Promise<OciError> {
    if (isClosedPoolError(err)) return new UpstreamClosedError(this.name);
    const kind = classify(err);
    if (kind === 'outage') {
      const reason = describeNetworkError(err);
      this.breaker.failure(reason, false, NO_CONNECTION_CODES.has(errorCode(err) ?? ''), startedAt);
      return new UnreachableError(`upstream ${this.name} (${this.remoteurl}) is unreachable: ${reason}`);
    }
    if (kind === 'config') {
      return badGateway(problemLine(this.config, describeConfigProblem(this.config, err)));
    }
    const at = this.now();
    if (!this.trustNote || at - this.trustNote.at > TRUST_NOTE_MS) {
      this.trustNote = { at, text: peerCertificate(this.config, this.connectMs).then((cert) => describeTrustProblem(this.config, err, cert)) };
    }
    return badGateway(problemLine(this.config, await this.trustNote.text));
  }

  private authHeader(scope: string): Record<string, string> {
    if (this.scheme === 'basic' && this.config.username !== undefined) {
      return { authorization: basicAuth(this.config.username, this.config.password ?? '') };
    }
    if (this.scheme === 'bearer') {
      const token = this.tokens.cached(scope);
      if (token) return { authorization: `Bearer ${token}` };
    }
    return {};
  }

  /**
   * Follows redirects of reads (blob storage often lives elsewhere), dropping credentials across
   * origins. Writes are not redirected: their 3xx goes back to the caller.
   */
  private async sendWithRedirects(
    method: string,
    url: string,
    headers: Record<string, string>,
    body?: () => Buffer | Readable,
    known = false,
  ): Promise<UpstreamResponse> {
    let current = url;
    let hdrs = { ...headers, ...this.viaHeader() };
    const follows = method === 'GET' || method === 'HEAD';
    for (let hop = 0; ; hop++) {
      let res: Dispatcher.ResponseData;
      const startedAt = this.now();
      try {
        res = await request(current, { method: method, headers: hdrs, body: body?.(), dispatcher: this.dispatcher });
      } catch (err) {
        throw await this.networkFailure(err, startedAt);
      }
      if (this.instance !== undefined && responseValue(res.headers[INSTANCE_HEADER]) === this.instance) {
        await res.body.dump().catch(() => undefined);
        throw loopDetected(loopMessage(this.config));
      }
      // Connect errors and timeouts above always count; a 5xx only where the upstream should have served.
      if (res.statusCode >= 500) {
        if (known) this.breaker.failure(`answered ${res.statusCode}`);
      } else this.breaker.success();
      const location = res.headers['location'];
      if (follows && res.statusCode >= 300 && res.statusCode < 400 && typeof location === 'string' && hop < MAX_REDIRECTS) {
        await res.body.dump();
        const next = new URL(location, current);
        if (next.origin !== new URL(current).origin) {
          const { authorization: _dropped, ...rest } = hdrs;
          hdrs = rest;
        }
        current = next.toString();
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body };
    }
  }
}

/** The first value of a response header (undici gives arrays for repeated headers). */
export function responseHeader(res: UpstreamResponse, name: string): string | undefined {
  return responseValue(res.headers[name]);
}

function responseValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  const message = e.cause?.message ?? e.message ?? String(err);
  return code ? `${code} (${message})` : message;
}
