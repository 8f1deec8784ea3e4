/** @module cli/cert — `berth cert generate`: a CA and a server certificate for berth, and how each node trusts the CA. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { checkNames, createCa, issueCertificate, type Issued } from './certs.js';
import { UsageError } from '../oci/errors.js';
import { BERTH_CA_NAME } from '../upstream/trust.js';

export interface CertGenerateOptions {
  readonly hosts: readonly string[];
  readonly ips: readonly string[];
  readonly out: string;
  readonly days: number;
  readonly port: number;
}

export const CA_DAYS = 3650;

/** Writes via a temporary name and rename, so berth's file watcher never reads half a file. */
function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

/**
 * Creates DIR/ca.crt + ca.key (or reuses them, so nodes keep trusting the same CA on renewal)
 * and DIR/tls.crt + tls.key; returns the text to print.
 */
export function generateCertificates(opts: CertGenerateOptions, now = Date.now()): string {
  const problems = checkNames(opts.hosts, opts.ips);
  if (opts.hosts.length + opts.ips.length === 0)
    problems.push('name at least one --host or --ip: clients check the name they connect to against the certificate');
  if (!Number.isInteger(opts.days) || opts.days < 1) problems.push(`--days ${opts.days} is not a positive whole number of days`);
  if (problems.length > 0) throw new CertUsageError(problems.join('\n'));
  const out = resolve(opts.out);
  mkdirSync(out, { recursive: true });
  const caCrt = join(out, 'ca.crt');
  const caKey = join(out, 'ca.key');
  let ca: Issued;
  let reused = false;
  if (existsSync(caCrt) && existsSync(caKey)) {
    ca = { cert: readFileSync(caCrt, 'utf8'), key: readFileSync(caKey, 'utf8') };
    reused = true;
  } else {
    ca = createCa(BERTH_CA_NAME, CA_DAYS, now);
    writeAtomic(caKey, ca.key, 0o600);
    writeAtomic(caCrt, ca.cert, 0o644);
  }
  const server = issueCertificate(ca, { hosts: opts.hosts, ips: opts.ips, usage: 'server', days: opts.days }, now);
  const tlsKey = join(out, 'tls.key');
  const tlsCrt = join(out, 'tls.crt');
  writeAtomic(tlsKey, server.key, 0o600);
  writeAtomic(tlsCrt, server.cert, 0o644);
  const x509 = new X509Certificate(server.cert);
  return instructions({
    out,
    caCrt,
    caKey,
    tlsCrt,
    tlsKey,
    reused,
    sans: x509.subjectAltName ?? '',
    notAfter: x509.validTo,
    names: [...opts.hosts, ...opts.ips],
    port: opts.port,
  });
}

/** `berth cert generate` asked for something it cannot make: exit 2. */
export class CertUsageError extends UsageError {
  constructor(message: string) {
    super(message, 'berth cert generate');
    this.name = 'CertUsageError';
  }
}

function instructions(o: {
  out: string;
  caCrt: string;
  caKey: string;
  tlsCrt: string;
  tlsKey: string;
  reused: boolean;
  sans: string;
  notAfter: string;
  names: string[];
  port: number;
}): string {
  // Docker reads certs.d/<host>/ for port 443 and certs.d/<host>:<port>/ for any other port.
  const registry = (n: string) => `${n.includes(':') ? `[${n}]` : n}${o.port === 443 ? '' : `:${o.port}`}`;
  const first = registry(o.names[0] ?? 'berth');
  return `${o.reused ? 'Reused the CA in' : 'Created a CA in'} ${o.out}:
  ${o.caCrt}   the CA certificate: every node trusts this file (it is public)
  ${o.caKey}   the CA key: keep it secret and offline; it is needed only to issue certificates again
Issued berth's server certificate, valid until ${o.notAfter}:
  ${o.tlsCrt}
  ${o.tlsKey}
  names: ${o.sans}

Serve it (config.yml; berth reloads it on change or SIGHUP, connections stay up):
  http:
    tls:
      certificate: ${o.tlsCrt}
      key: ${o.tlsKey}

Trust the CA on each node (nothing "insecure" needed), for every name nodes use (${o.names.map(registry).join(', ')}):

  containerd: copy ca.crt to /etc/containerd/certs.d/<registry>/ca.crt and name it in
  /etc/containerd/certs.d/<registry>/hosts.toml (<registry> is what images are named by, e.g. harbor.xing.com):
      server = "https://<registry>"
      [host."https://${first}"]
        capabilities = ["pull", "resolve"]
        ca = "/etc/containerd/certs.d/<registry>/ca.crt"

  Docker: one directory per name and port clients use (no :port for 443), no restart needed${o.port === 443 ? '' : ` (for berth on 443 the directories have no :${o.port}, see --port)`}:
${o.names
  .map(registry)
  .map((r) => `      mkdir -p /etc/docker/certs.d/${r}\n      cp ${o.caCrt} /etc/docker/certs.d/${r}/ca.crt`)
  .join('\n')}

  The OS (curl, skopeo, podman, CRI-O):
      Debian, Ubuntu:  cp ${o.caCrt} /usr/local/share/ca-certificates/berth-ca.crt && update-ca-certificates
      RHEL, Fedora:    cp ${o.caCrt} /etc/pki/ca-trust/source/anchors/berth-ca.crt && update-ca-trust
  skopeo and podman also take a directory holding ca.crt: --cert-dir / --src-cert-dir.
`;
}
