/** @module upstream/trust — telling TLS trust and configuration errors apart from outages, and naming the certificate and the key that fixes them. */
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import type { UpstreamConfig } from '../config/types.js';
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

/** One sentence: what is wrong with the certificate, which certificate, and the key that fixes it. */
export function describeTrustProblem(config: UpstreamConfig, err: unknown, cert: PeerCertificate | undefined): { message: string; fix: string } {
  const code = errorCode(err) ?? 'TLS error';
  const host = new URL(config.remoteurl).host;
  const subject = dn(cert?.subject as never);
  const issuer = dn(cert?.issuer as never);
  const selfSigned = cert !== undefined && subject === issuer;
  const which = cert
    ? `certificate of ${host} (subject ${subject}; issuer ${selfSigned ? 'itself, self-signed' : issuer}; valid until ${cert.valid_to})`
    : `certificate of ${host}`;
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return { message: `the ${which} is not valid now (${code})`, fix: `renew the central registry's certificate, or check the cache host's clock` };
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') {
    return {
      message: `the ${which} does not name ${new URL(config.remoteurl).hostname} (${code}${cert?.subjectaltname ? `; it names ${cert.subjectaltname}` : ''})`,
      fix: `use the name the certificate holds in remoteurl (with resolve: for its address), or reissue the certificate`,
    };
  }
  return {
    message: `the ${which} is not trusted (${code})`,
    fix: `set ${keyOf(config, 'ca')} to a PEM file holding ${selfSigned ? 'this certificate (a self-signed harbor.crt works as is)' : `the CA certificate of issuer ${issuer}`}; or set NODE_EXTRA_CA_CERTS for berth; insecure: true skips verification`,
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
