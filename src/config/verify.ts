/** @module config/verify — the `verify:` section: signature policy entries, their public keys read and checked at start. */

import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as ProtobufSpecs from '@sigstore/protobuf-specs';
import type * as SigstoreVerify from '@sigstore/verify';
import type { TrustMaterial } from '@sigstore/verify';
import { z } from 'zod';
import { flag, oneOf, pathText, text } from './fields.js';

// The Sigstore packages are loaded when a config names a trusted root, not at every start-up
// (about 0.1 s of CPU); require's cache keeps them once loaded.
const load = createRequire(import.meta.url);

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
        description:
          'Also accept keyless Sigstore bundles (a certificate instead of a key), verified offline against trustedroot for the listed identities. Bundles signed with one of keys are accepted without it.',
        default: 'false',
      }),
      trustedroot: pathText().optional().meta({
        description: 'Sigstore trusted root (trusted_root.json: CAs, transparency logs, CT logs, timestamp authorities) for keyless bundles.',
        example: '/etc/berth/trusted_root.json',
      }),
      identities: z
        .array(
          z.strictObject({
            subject: text().meta({ description: "The certificate's subject alternative name (an e-mail or URI), compared exactly." }),
            issuer: text().optional().meta({ description: 'The OIDC issuer in the certificate (Fulcio extension), compared exactly; any when absent.' }),
          }),
        )
        .optional()
        .meta({
          description: 'Signers a keyless bundle may name; bundle needs at least one.',
          example: '[{subject: ci@example.com, issuer: https://accounts.example.com}]',
        }),
      timestamps: oneOf(['required', 'optional'] as const)
        .optional()
        .meta({
          description:
            'required: a keyless bundle needs a transparency log entry or signed timestamp the trusted root vouches for; optional: without one its certificate is checked at the current time (private CAs with long-lived certificates, cosign --tlog-upload=false).',
          default: 'required',
        }),
    })
    .optional()
    .meta({
      description:
        "cosign signatures: the sha256-<hex>.sig tag, the manifest's OCI 1.1 referrers and the referrers tag sha256-<hex> are looked up, for simple signing payloads and Sigstore bundles.",
    }),
  notation: z
    .strictObject({ truststore: pathText().meta({ description: 'Directory of x509 CA certificates; not supported (see signatures.md).' }) })
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

/** What keyless Sigstore bundles are verified against: a trusted root, read and parsed. */
export interface BundleTrust {
  /** The trusted root file as configured, resolved; named in messages. */
  readonly file: string;
  readonly material: TrustMaterial;
  readonly identities: ReadonlyArray<{ readonly subject: string; readonly issuer?: string }>;
  readonly timestamps: 'required' | 'optional';
}

/** One `verify:` entry, keys loaded. */
export interface VerifyRule {
  readonly repositories: readonly string[];
  readonly mode: VerifyMode;
  readonly keys: readonly VerifyKey[];
  /** Present when the entry accepts keyless bundles (cosign.bundle). */
  readonly keyless?: BundleTrust;
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
    if (entry.notation)
      problems.push(
        `${formatPath([...path, 'notation'])}: Notation signatures are not supported (see docs/signatures.md); allowed: cosign.keys, cosign.bundle`,
      );
    const keyless = buildKeyless(entry.cosign, path, where, problems);
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
    if (mode !== 'off' && (entry.cosign?.keys ?? []).length === 0 && !entry.cosign?.bundle)
      problems.push(`${formatPath(path)}: mode ${mode} needs cosign.keys (public keys to verify against) or cosign.bundle; allowed: mode off without keys`);
    return { repositories: entry.repositories, mode, keys, ...(keyless ? { keyless } : {}) };
  });
}

type CosignDoc = NonNullable<VerifyDoc[number]['cosign']>;

/** The trusted root and identities of an entry with cosign.bundle, or undefined (with a problem when they are incomplete). */
function buildKeyless(cosign: CosignDoc | undefined, path: Array<string | number>, where: Where, problems: string[]): BundleTrust | undefined {
  const at = formatPath([...path, 'cosign']);
  if (!cosign?.bundle) {
    if (cosign?.trustedroot !== undefined || cosign?.identities !== undefined)
      problems.push(`${at}: trustedroot and identities are for keyless bundles and need bundle: true`);
    return undefined;
  }
  if (cosign.trustedroot === undefined) {
    problems.push(`${at}: bundle: true needs trustedroot (a Sigstore trusted_root.json)`);
    return undefined;
  }
  if ((cosign.identities ?? []).length === 0) {
    problems.push(`${at}: bundle: true needs identities (the certificate subjects allowed to sign); any certificate of a public CA would pass otherwise`);
    return undefined;
  }
  const file = where([...path, 'cosign', 'trustedroot'], cosign.trustedroot);
  const material = loadTrustedRoot(file);
  if (typeof material === 'string') {
    problems.push(`${at}.trustedroot: ${material}`);
    return undefined;
  }
  return { file, material, identities: cosign.identities ?? [], timestamps: cosign.timestamps ?? 'required' };
}

/** A configured file's text, or why it cannot be read (naming what it is and the file). */
function readText(file: string, what: string): { ok: true; text: string } | { ok: false; why: string } {
  try {
    return { ok: true, text: readFileSync(file, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, why: `cannot read ${what} file ${JSON.stringify(file)}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}` };
  }
}

/** The trust material of a trusted_root.json, or why not (naming the file). */
export function loadTrustedRoot(file: string): TrustMaterial | string {
  const text = readText(file, 'trusted root');
  if (!text.ok) return text.why;
  try {
    const { TrustedRoot } = load('@sigstore/protobuf-specs') as typeof ProtobufSpecs;
    const { toTrustMaterial } = load('@sigstore/verify') as typeof SigstoreVerify;
    const material = toTrustMaterial(TrustedRoot.fromJSON(JSON.parse(text.text)));
    if (material.certificateAuthorities.length === 0)
      return `trusted root file ${JSON.stringify(file)} lists no certificate authority; allowed: a Sigstore trusted_root.json`;
    return material;
  } catch (err) {
    return `trusted root file ${JSON.stringify(file)} is not a Sigstore trusted root (${(err as Error).message}); allowed: a trusted_root.json as cosign trusted-root create or the Sigstore TUF repository writes it`;
  }
}

/** The key in a PEM file, or why not (naming the file). */
export function loadPublicKey(file: string): KeyObject | string {
  const pem = readText(file, 'public key');
  if (!pem.ok) return pem.why;
  try {
    const key = createPublicKey(pem.text);
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
