/** @module http/tls — the serving certificate: read, checked, and swapped in on change without dropping connections. */
import { readFileSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { DEFAULT_CIPHERS, createSecureContext } from 'node:tls';
import type { Logger } from 'pino';

export interface TlsFiles {
  readonly certificate: string;
  readonly key: string;
}

/**
 * The server picks the cipher, AES-128-GCM first: clients (curl, containerd, Docker) list
 * AES-256-GCM first, which costs more CPU per byte for no protection that matters here, and
 * every CPU a registry runs on has AES instructions. Node's defaults follow, TLS 1.2 ones included.
 */
const TLS13_ORDER = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
export const SERVER_CIPHERS = {
  ciphers: [...TLS13_ORDER, ...DEFAULT_CIPHERS.split(':').filter((c) => !TLS13_ORDER.includes(c))].join(':'),
  honorCipherOrder: true,
} as const;

/** Reads and checks the pair: a key that does not belong to the certificate fails here, not at the first handshake. */
function readTls(files: TlsFiles): { cert: Buffer; key: Buffer; notAfter: string; subjectAltName: string | undefined } {
  const cert = readFileSync(files.certificate);
  const key = readFileSync(files.key);
  createSecureContext({ cert, key });
  const x509 = new X509Certificate(cert);
  return { cert, key, notAfter: x509.validTo, subjectAltName: x509.subjectAltName };
}

/** The pair to start serving with; an unreadable or mismatched pair stops berth with a message naming the keys. */
export function serverTls(files: TlsFiles): { cert: Buffer; key: Buffer } & typeof SERVER_CIPHERS {
  try {
    const { cert, key } = readTls(files);
    return { cert, key, ...SERVER_CIPHERS };
  } catch (err) {
    throw new Error(
      `http.tls.certificate, http.tls.key: cannot use ${JSON.stringify(files.certificate)} and ${JSON.stringify(files.key)}: ${(err as Error).message}`,
    );
  }
}

/**
 * Loads the certificate and key again (SIGHUP, or the files changed). New handshakes use the new
 * pair; connections already open keep theirs. A broken pair is logged and the old one kept.
 */
export function reloadTls(server: HttpsServer, files: TlsFiles, logger: Logger, reason: string): boolean {
  try {
    const { cert, key, notAfter, subjectAltName } = readTls(files);
    server.setSecureContext({ cert, key, ...SERVER_CIPHERS });
    logger.info({ reason, certificate: files.certificate, notAfter, subjectAltName }, 'TLS certificate reloaded');
    return true;
  } catch (err) {
    logger.error(
      { reason, certificate: files.certificate, key: files.key, err: (err as Error).message },
      'TLS certificate reload failed; still serving the previous certificate',
    );
    return false;
  }
}
