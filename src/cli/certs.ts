/** @module cli/certs — issuing a private CA and certificates with proper SANs (node:crypto keys, node-forge X.509). */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

const { pki } = forge;

export interface Issued {
  /** PEM certificate. */
  readonly cert: string;
  /** PEM PKCS#8 private key. */
  readonly key: string;
}

export interface CertificateRequest {
  /** DNS names (wildcards such as *.edge.xing.com allowed). */
  readonly hosts: readonly string[];
  readonly ips: readonly string[];
  /** `server` for berth itself; `client` for mutual TLS towards an upstream. */
  readonly usage: 'server' | 'client';
  readonly days: number;
  readonly commonName?: string;
}

const DAY_MS = 86_400_000;
/** Clocks of nodes that are a little behind still accept a certificate issued just now. */
const BACKDATE_MS = 5 * 60_000;
const HOST = /^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export function checkNames(hosts: readonly string[], ips: readonly string[]): string[] {
  const problems: string[] = [];
  for (const h of hosts)
    if (!HOST.test(h) || h.length > 253)
      problems.push(`--host ${JSON.stringify(h)} is not a DNS name; allowed: e.g. berth.edge.xing.com (an IP address goes to --ip)`);
  for (const ip of ips) if (isIP(ip) === 0) problems.push(`--ip ${JSON.stringify(ip)} is not an IPv4 or IPv6 address`);
  return problems;
}

function newKey(): { pem: string; forgeKey: forge.pki.rsa.PrivateKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { pem, forgeKey: pki.privateKeyFromPem(pem) };
}

function baseCertificate(key: forge.pki.rsa.PrivateKey, days: number, now: number): forge.pki.Certificate {
  const cert = pki.createCertificate();
  cert.publicKey = pki.setRsaPublicKey(key.n, key.e);
  // A positive serial of 128 random bits (the high bit cleared so DER does not read it as negative).
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  cert.validity.notAfter = new Date(now + days * DAY_MS);
  return cert;
}

/** A self-signed CA that may sign end-entity certificates only (path length 0). */
export function createCa(commonName: string, days: number, now = Date.now()): Issued {
  const { pem, forgeKey } = newKey();
  const cert = baseCertificate(forgeKey, days, now);
  const name = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'berth' },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forgeKey, forge.md.sha256.create());
  return { cert: pki.certificateToPem(cert), key: pem };
}

/**
 * A certificate signed by `ca`, naming every host and IP as a subjectAltName: clients match
 * SANs only (Go ignores the Common Name since 1.15), so the CN is a label and nothing more.
 */
export function issueCertificate(ca: Issued, req: CertificateRequest, now = Date.now()): Issued {
  const problems = checkNames(req.hosts, req.ips);
  if (problems.length > 0) throw new Error(problems.join('\n'));
  if (req.usage === 'server' && req.hosts.length + req.ips.length === 0) throw new Error('a server certificate needs at least one --host or --ip');
  const caCert = pki.certificateFromPem(ca.cert);
  const caKey = pki.privateKeyFromPem(ca.key);
  const { pem, forgeKey } = newKey();
  const cert = baseCertificate(forgeKey, req.days, now);
  cert.setSubject([
    { name: 'commonName', value: (req.commonName ?? req.hosts[0] ?? req.ips[0] ?? 'berth').slice(0, 64) },
    { name: 'organizationName', value: 'berth' },
  ]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [...req.hosts.map((value) => ({ type: 2, value })), ...req.ips.map((ip) => ({ type: 7, ip }))];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: req.usage === 'server', clientAuth: req.usage === 'client' },
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: pki.certificateToPem(cert), key: pem };
}
