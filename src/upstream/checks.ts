/** @module upstream/checks — what berth verifies about each upstream at start and in `berth doctor`: DNS, connect, TLS trust, loop, credentials, token realm. */
import { lookup } from 'node:dns/promises';
import { connect as netConnect, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import type { Dispatcher } from 'undici';
import { request } from '../util/undici.js';
import type { UpstreamConfig } from '../config/types.js';
import { parseChallenge } from './challenge.js';
import { basicAuth, fetchToken } from './tokens.js';
import { connectOptions } from './connection-pool.js';
import { describeConfigProblem, describeTrustProblem, errorCode, keyOf, loopProblem, peerCertificate } from './trust.js';
import { INSTANCE_HEADER, VIA_HEADER } from './loop.js';
import { pino } from 'pino';

export type CheckName = 'dns' | 'connect' | 'tls' | 'loop' | 'credentials' | 'token';

export interface CheckResult {
  readonly check: CheckName;
  readonly ok: boolean;
  readonly message: string;
  /** What to change, for a failed check. */
  readonly fix?: string;
}

export interface CheckOptions {
  readonly connectMs: number;
  /** The upstream's own pool (same TLS settings and `resolve:` as pulls use). */
  readonly dispatcher: Dispatcher;
  readonly instance?: string;
  /**
   * Where this berth listens (`berth doctor` passes them): an upstream at one of these on this
   * host is a loop even while berth is stopped and cannot answer with its instance id.
   */
  readonly listens?: ReadonlyArray<{ readonly host: string; readonly port: number }>;
}

const ok = (check: CheckName, message: string): CheckResult => ({ check, ok: true, message });
const fail = (check: CheckName, message: string, fix: string): CheckResult => ({ check, ok: false, message, fix });

/** Runs the checks in order; a failed step ends the list (later steps could not say anything true). */
export async function runChecks(config: UpstreamConfig, opts: CheckOptions): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const url = new URL(config.remoteurl);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));

  let address: string;
  if (config.resolve !== undefined) {
    address = config.resolve;
    out.push(ok('dns', `${host} is reached at ${address}, as ${keyOf(config, 'resolve')} says (DNS not asked)`));
  } else if (isIP(host)) {
    address = host;
  } else {
    try {
      address = (await lookup(host)).address;
      out.push(ok('dns', `${host} resolves to ${address}`));
    } catch (err) {
      const p = describeConfigProblem(config, err);
      out.push(fail('dns', p.message, p.fix));
      return out;
    }
  }

  if (opts.listens !== undefined && isOwnAddress(address, port, opts.listens)) {
    const p = loopProblem(config, `${address}:${port} is where this berth listens`);
    out.push(fail('loop', p.message, p.fix));
    return out;
  }

  const connected = await tcpConnect(address, port, opts.connectMs);
  if (connected !== undefined) {
    // The address comes from remoteurl itself for an IP, else from resolve: or DNS: name the key that set it.
    const source = isIP(host) ? keyOf(config, 'remoteurl') : config.resolve !== undefined ? keyOf(config, 'resolve') : `DNS for ${host}`;
    out.push(
      fail(
        'connect',
        `cannot connect to ${address}:${port} (from ${source}): ${connected}`,
        `start the central registry at ${address}:${port}, or open the way there from the cache host`,
      ),
    );
    return out;
  }
  out.push(ok('connect', `connected to ${address}:${port}`));

  if (url.protocol === 'https:') {
    const tls = await tlsCheck(config, host, port, opts.connectMs);
    out.push(tls);
    if (!tls.ok) return out;
  }

  let res: Dispatcher.ResponseData;
  try {
    res = await request(`${config.remoteurl}/v2/`, {
      method: 'GET',
      headers: opts.instance ? { [VIA_HEADER]: opts.instance } : {},
      dispatcher: opts.dispatcher,
    });
    await res.body.dump();
  } catch (err) {
    out.push(
      fail(
        'connect',
        `GET ${config.remoteurl}/v2/ failed: ${errorCode(err) ?? (err as Error).message}`,
        'check that remoteurl names a registry (its /v2/ endpoint)',
      ),
    );
    return out;
  }
  const answeredBy = first(res.headers[INSTANCE_HEADER]);
  if (opts.instance !== undefined && answeredBy === opts.instance) {
    const p = loopProblem(config);
    out.push(fail('loop', p.message, p.fix));
    return out;
  }
  out.push(ok('loop', answeredBy ? `${config.remoteurl} is another berth (instance ${answeredBy})` : `${config.remoteurl} is not this berth`));
  out.push(...(await authChecks(config, res, opts)));
  return out;
}

async function authChecks(config: UpstreamConfig, res: Dispatcher.ResponseData, opts: CheckOptions): Promise<CheckResult[]> {
  if (res.statusCode >= 500)
    return [fail('credentials', `${config.remoteurl}/v2/ answered ${res.statusCode}`, 'the central registry is failing; see its logs')];
  if (res.statusCode !== 401) {
    return [
      ok(
        'credentials',
        config.username !== undefined
          ? `${config.remoteurl} asks for no credentials (${keyOf(config, 'username')} is not needed)`
          : `${config.remoteurl} allows anonymous pulls`,
      ),
    ];
  }
  const challenge = parseChallenge(res.headers['www-authenticate']);
  const creds = config.username !== undefined ? { username: config.username, password: config.password ?? '' } : undefined;
  const setCreds = `set ${keyOf(config, 'username')} and password (or passwordfile, dockerconfig)`;
  if (challenge?.scheme === 'basic') {
    if (!creds) return [fail('credentials', `${config.remoteurl} requires credentials`, setCreds)];
    const again = await request(`${config.remoteurl}/v2/`, {
      method: 'GET',
      headers: { authorization: basicAuth(creds.username, creds.password), ...(opts.instance ? { [VIA_HEADER]: opts.instance } : {}) },
      dispatcher: opts.dispatcher,
    });
    await again.body.dump();
    return again.statusCode === 200
      ? [ok('credentials', `${config.remoteurl} accepts user "${creds.username}" (basic auth)`)]
      : [
          fail(
            'credentials',
            `${config.remoteurl} rejected user "${creds.username}" (basic auth, ${again.statusCode})`,
            `check ${keyOf(config, 'username')} and its password`,
          ),
        ];
  }
  if (challenge?.scheme !== 'bearer')
    return [
      fail(
        'credentials',
        `${config.remoteurl} sent an authentication challenge berth does not know: ${challenge?.scheme ?? '(none)'}`,
        'use a registry with basic or bearer token auth',
      ),
    ];
  const realm = challenge.params['realm'] ?? '';
  try {
    const outcome = await fetchToken(
      {
        upstreamName: config.name,
        remoteurl: config.remoteurl,
        allowedRealms: config.tokenrealms,
        dispatcher: opts.dispatcher,
        logger: pino({ level: 'silent' }),
      },
      challenge,
      undefined,
      creds,
    );
    const token = ok('token', `token realm ${realm} answers`);
    if (outcome.kind === 'rejected') {
      return [
        token,
        creds
          ? fail(
              'credentials',
              `token realm ${realm} rejected user "${creds.username}" (${outcome.status})`,
              `check ${keyOf(config, 'username')} and its password`,
            )
          : fail('credentials', `token realm ${realm} refuses anonymous tokens (${outcome.status})`, setCreds),
      ];
    }
    return [
      token,
      ok('credentials', creds ? `token realm ${realm} issued a token for user "${creds.username}"` : `token realm ${realm} issues anonymous tokens`),
    ];
  } catch (err) {
    return [
      fail(
        'token',
        (err as Error).message,
        `make the token realm reachable from the cache host, or list its host in ${keyOf(config, 'tokenrealms')} if it is trusted`,
      ),
    ];
  }
}

/** The address is this host's (loopback, an interface, or the one berth binds) and the port berth's. */
function isOwnAddress(address: string, port: number, listens: ReadonlyArray<{ readonly host: string; readonly port: number }>): boolean {
  const local = new Set(['0.0.0.0', '::']);
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) local.add(i.address);
  const isLocal = local.has(address) || address.startsWith('127.') || address === '::1';
  const loopback = address.startsWith('127.') || address === '::1';
  return listens.some(
    (l) => l.port === port && (['', '0.0.0.0', '::'].includes(l.host) ? isLocal : l.host === address || (l.host === 'localhost' && loopback)),
  );
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** undefined when connected, else the reason. */
function tcpConnect(address: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = netConnect({ host: address, port, timeout: timeoutMs });
    s.once('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(`no answer within ${timeoutMs} ms`);
    });
    s.once('error', (err) => resolve(errorCode(err) ?? err.message));
  });
}

function tlsCheck(config: UpstreamConfig, host: string, port: number, timeoutMs: number): Promise<CheckResult> {
  if (config.insecure) return Promise.resolve(ok('tls', `certificate not verified (${keyOf(config, 'insecure')}: true)`));
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ ...connectOptions(config, timeoutMs), host, port, ...(isIP(host) ? {} : { servername: host }) } as never);
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      resolve(fail('tls', `no TLS handshake within ${timeoutMs} ms`, "check that remoteurl's port speaks TLS"));
    });
    s.once('secureConnect', () => {
      const cert = s.getPeerCertificate();
      s.destroy();
      resolve(ok('tls', `certificate of ${host} trusted (subject ${cert.subject?.CN ?? '?'}, valid until ${cert.valid_to})`));
    });
    s.once('error', (err) => {
      s.destroy();
      // An emitter drops a listener's promise: a failure while explaining must still settle the check.
      tlsFailure(config, err, timeoutMs).then(resolve, reject);
    });
  });
}

async function tlsFailure(config: UpstreamConfig, err: Error, timeoutMs: number): Promise<CheckResult> {
  if (errorCode(err)?.startsWith('ERR_SSL')) {
    const p = describeConfigProblem(config, err);
    return fail('tls', p.message, p.fix);
  }
  const p = describeTrustProblem(config, err, await peerCertificate(config, timeoutMs));
  return fail(p.loop ? 'loop' : 'tls', p.message, p.fix);
}
