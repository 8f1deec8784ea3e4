/** @module config/verify — the `verify:` section: signature policy entries, their public keys read and checked at start. */

import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { flag, oneOf, pathText, text } from './fields.js';

export const VERIFY_MODES = ['enforce', 'warn', 'off'] as const;
export type VerifyMode = (typeof VERIFY_MODES)[number];

export const verifyEntrySchema = z.strictObject({
  repositories: z
    .array(text())
    .meta({ description: 'Repository patterns as the upstream names them (as in auth.rules); * matches any characters, / included.', example: '[xing/*]' }),
  mode: oneOf(VERIFY_MODES).optional().meta({
    description: 'enforce serves only signed manifests (403 DENIED otherwise); warn serves and logs once per digest; off checks nothing.',
    default: 'enforce',
  }),
  cosign: z
    .strictObject({
      keys: z.array(pathText()).optional().meta({
        description: 'PEM public keys (cosign.pub: ECDSA P-256 or P-384, RSA, Ed25519); a signature by any of them is valid.',
        example: '[/etc/berth/cosign.pub]',
      }),
      bundle: flag().optional().meta({
        description: 'Sigstore bundles (keyless) verified against trustedroot; not supported yet: berth refuses to start with it set.',
        default: 'false',
      }),
      trustedroot: pathText().optional().meta({ description: 'Sigstore trusted root (JSON) for bundle; not supported yet.' }),
    })
    .optional()
    .meta({ description: 'cosign signatures: the sha256-<hex>.sig tag and OCI 1.1 referrers of the manifest are both looked up.' }),
  notation: z
    .strictObject({ truststore: pathText().meta({ description: 'Directory of x509 CA certificates; not supported yet.' }) })
    .optional()
    .meta({ description: 'Notation signatures; not supported yet: berth refuses to start with it set (see signatures.md).' }),
});

export const verifySchema = z
  .array(verifyEntrySchema)
  .meta({ description: 'Signature policy: a manifest in a matching repository is served only with a valid signature (the first matching entry applies).' });

/** A public key of a verify: entry, read and parsed. */
export interface VerifyKey {
  /** The file as configured, resolved; named in messages. */
  readonly file: string;
  readonly key: KeyObject;
}

/** One `verify:` entry, keys loaded. */
export interface VerifyRule {
  readonly repositories: readonly string[];
  readonly mode: VerifyMode;
  readonly keys: readonly VerifyKey[];
}

/** `verify[0].cosign.keys[1]`, as config/walk writes key paths (not imported: walk reads the schema, which imports this). */
function formatPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

type Where = (path: readonly (string | number)[], p: string) => string;
type VerifyDoc = z.output<typeof verifySchema>;

/** Reads every key file once; a file that is missing or holds no usable public key is a problem naming it. */
export function buildVerify(doc: VerifyDoc | undefined, where: Where, problems: string[]): VerifyRule[] {
  return (doc ?? []).map((entry, i) => {
    const path = ['verify', i];
    const mode = entry.mode ?? 'enforce';
    if (entry.cosign?.bundle || entry.cosign?.trustedroot !== undefined)
      problems.push(`${formatPath([...path, 'cosign'])}: Sigstore bundles (bundle, trustedroot) are not supported yet; allowed: keys (cosign key pairs)`);
    if (entry.notation) problems.push(`${formatPath([...path, 'notation'])}: Notation signatures are not supported yet; allowed: cosign.keys`);
    const keys = (entry.cosign?.keys ?? []).flatMap((p, k) => {
      const key = [...path, 'cosign', 'keys', k];
      const file = where(key, p);
      const loaded = loadPublicKey(file);
      if (typeof loaded === 'string') {
        problems.push(`${formatPath(key)}: ${loaded}`);
        return [];
      }
      return [{ file, key: loaded }];
    });
    if (mode !== 'off' && (entry.cosign?.keys ?? []).length === 0)
      problems.push(`${formatPath(path)}: mode ${mode} needs cosign.keys (public keys to verify against); allowed: mode off without keys`);
    return { repositories: entry.repositories, mode, keys };
  });
}

/** The key in a PEM file, or why not (naming the file). */
export function loadPublicKey(file: string): KeyObject | string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return `cannot read public key file ${JSON.stringify(file)}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`;
  }
  try {
    const key = createPublicKey(pem);
    const type = key.asymmetricKeyType;
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (type === 'ec' && curve !== 'prime256v1' && curve !== 'secp384r1')
      return `public key file ${JSON.stringify(file)} holds an EC key on ${curve ?? 'an unknown curve'}; allowed: P-256, P-384, RSA or Ed25519`;
    if (type !== 'ec' && type !== 'rsa' && type !== 'ed25519')
      return `public key file ${JSON.stringify(file)} holds a ${type ?? 'unknown'} key; allowed: ECDSA P-256 or P-384, RSA or Ed25519 (cosign.pub)`;
    return key;
  } catch (err) {
    return `public key file ${JSON.stringify(file)} holds no PEM public key (${(err as Error).message}); allowed: a cosign.pub as cosign generate-key-pair writes it`;
  }
}
