/** @module upstream/trust — telling TLS trust and configuration errors apart from outages, and naming the certificate and the key that fixes them. */
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import type { UpstreamConfig } from '../config/types.js';
import { isIP } from 'node:net';
import { connectOptions } from './connection-pool.js';

/** OpenSSL/Node verification codes: the upstream answered, berth does not trust what it showed. */
const TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
]);
/** Answers that mean the configuration names the wrong thing, not that the link is down. */
const CONFIG_CODES = new Set(['ENOTFOUND', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_TLS_CERT_ALTNAME_FORMAT']);

/** Name lookup failures; only ENOTFOUND is certain enough to be a configuration error on a request. */
const NAME_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'ENODATA', 'ESERVFAIL']);

export type FailureKind = 'trust' | 'config' | 'outage';

export function errorCode(err: unknown): string | undefined {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.cause?.code ?? e?.code;
}

/** Trust and configuration errors repeat on every request until the config changes: they are not outages. */
export function classify(err: unknown): FailureKind {
  const code = errorCode(err);
  if (code === undefined) return 'outage';
  if (TRUST_CODES.has(code)) return 'trust';
  return CONFIG_CODES.has(code) ? 'config' : 'outage';
}

/** `upstreams[harbor].ca` is not a path a user can type; name the section they edit. */
export function keyOf(config: UpstreamConfig, key: string): string {
  return config.name === 'default' ? `proxy.${key}` : `${key} of upstream ${config.name}`;
}

/** The certificate the upstream presents, read without verifying it (for the message only; nothing is sent). */
export function peerCertificate(config: UpstreamConfig, connectMs: number): Promise<PeerCertificate | undefined> {
  const url = new URL(config.remoteurl);
  const servername = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve) => {
    const socket = tlsConnect({
      ...connectOptions(config, connectMs),
      host: servername,
      port: Number(url.port || 443),
      ...(/^[\d.]+$|:/.test(servername) ? {} : { servername }),
      rejectUnauthorized: false,
    } as never);
    const done = (cert: PeerCertificate | undefined) => {
      socket.destroy();
      resolve(cert);
    };
    socket.setTimeout(connectMs, () => done(undefined));
    socket.once('secureConnect', () => {
      const c = socket.getPeerCertificate();
      done(c && Object.keys(c).length > 0 ? c : undefined);
    });
    socket.once('error', () => done(undefined));
  });
}

function dn(part: Record<string, string | string[]> | undefined): string {
  if (!part) return '(none)';
  return (
    Object.entries(part)
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
      .join(', ') || '(empty)'
  );
}

export interface Problem {
  readonly message: string;
  /** One fix, the same text in a client's error, the log and doctor's `fix:` line. */
  readonly fix: string;
}

/**
 * Why the upstream is berth itself, and the one key that undoes it: `resolve:` for a name (the
 * hosts-file line belongs on the nodes only), `remoteurl` for an IP address (no hosts file is involved).
 */
export function loopProblem(config: UpstreamConfig, evidence?: string): Problem {
  const host = new URL(config.remoteurl).hostname.replace(/^\[(.*)\]$/, '$1');
  const head = `upstream ${config.name} (${config.remoteurl}) is this berth itself`;
  const why = evidence ?? "it answered with this berth's instance id";
  if (isIP(host)) {
    return {
      message: `${head}: ${host} leads back to berth (${why})`,
      fix: `set ${keyOf(config, 'remoteurl')} to the central registry's address, not berth's`,
    };
  }
  const via = config.resolve !== undefined ? `${keyOf(config, 'resolve')} ${config.resolve}` : "the cache host's DNS or hosts file";
  return {
    message: `${head}: ${host} leads to berth through ${via} (${why}); only the nodes should reach berth by that name`,
    fix: `set ${keyOf(config, 'resolve')} to the central registry's real address`,
  };
}

/** A problem as one line for a client's error: which upstream, the cause, then its fix (http/respond.ts shortens the cause only). */
export function problemLine(config: UpstreamConfig, p: Problem): string {
  const head = `upstream ${config.name} (${config.remoteurl})`;
  return `${p.message.startsWith(head) ? p.message : `${head}: ${p.message}`}; fix: ${p.fix}`;
}

/** The CA `berth cert generate` creates (cli/cert.ts): a certificate it issued is one berth serves. */
export const BERTH_CA_NAME = 'berth edge CA';

/** A trust problem; `loop` when the certificate shows that the upstream is a berth, most likely this one. */
export interface TrustProblem extends Problem {
  readonly loop?: boolean;
}

function issuedByBerth(cert: PeerCertificate | undefined): boolean {
  const cn = (cert?.issuer as Record<string, string | string[]> | undefined)?.['CN'];
  return (Array.isArray(cn) ? cn : [cn]).includes(BERTH_CA_NAME);
}

/**
 * One sentence: what is wrong with the certificate, which certificate, and the one key that fixes it.
 * Berth's own CA comes first: trusting it (the `ca:` advice) would only turn the error into the loop.
 */
export function describeTrustProblem(config: UpstreamConfig, err: unknown, cert: PeerCertificate | undefined): TrustProblem {
  const code = errorCode(err) ?? 'TLS error';
  const host = new URL(config.remoteurl).host;
  const subject = dn(cert?.subject as never);
  const issuer = dn(cert?.issuer as never);
  if (issuedByBerth(cert)) {
    const loop = loopProblem(config, `its certificate, subject ${subject}, is issued by ${BERTH_CA_NAME}, the CA of berth cert generate`);
    return { message: loop.message, fix: loop.fix, loop: true };
  }
  const selfSigned = cert !== undefined && subject === issuer;
  const which = cert
    ? `certificate of ${host} (subject ${subject}; issuer ${selfSigned ? 'itself, self-signed' : issuer}; valid until ${cert.valid_to})`
    : `certificate of ${host}`;
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return { message: `the ${which} is not valid now (${code})`, fix: `renew the central registry's certificate, or set the cache host's clock right` };
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') {
    const hostname = new URL(config.remoteurl).hostname.replace(/^\[(.*)\]$/, '$1');
    const named = /DNS:([^,\s]+)/.exec(cert?.subjectaltname ?? '')?.[1];
    // An IP in remoteurl and a certificate for a name: connect by the name, pinned to the IP.
    const fix =
      named !== undefined && !named.startsWith('*')
        ? `put ${named} in ${keyOf(config, 'remoteurl')}${isIP(hostname) ? ` and set ${keyOf(config, 'resolve')} to ${hostname}` : ''}`
        : `use a name the certificate holds in ${keyOf(config, 'remoteurl')}`;
    return {
      message: `the ${which} does not name ${hostname} (${code}${cert?.subjectaltname ? `; it names ${cert.subjectaltname}` : ''})`,
      fix,
    };
  }
  return {
    message: `the ${which} is not trusted (${code})`,
    fix: `set ${keyOf(config, 'ca')} to a PEM file holding ${selfSigned ? 'this certificate (a self-signed harbor.crt works as is)' : `the CA certificate of issuer ${issuer}`}`,
  };
}

/** The fix for a configuration error (a name that does not resolve, TLS spoken to a plain port). */
export function describeConfigProblem(config: UpstreamConfig, err: unknown): { message: string; fix: string } {
  const code = errorCode(err);
  const url = new URL(config.remoteurl);
  if (code !== undefined && NAME_CODES.has(code)) {
    return {
      message: `the name ${url.hostname} does not resolve on the cache host (${code})`,
      fix: `set ${keyOf(config, 'resolve')} to the central registry's address, or add it to the cache host's hosts file (in a container: --add-host or hostAliases)`,
    };
  }
  return {
    message: `${url.host} does not speak ${url.protocol === 'https:' ? 'TLS' : 'plain HTTP'} (${code})`,
    fix: `check the scheme and port in ${keyOf(config, 'remoteurl')}`,
  };
}
