/** @module cache/sigstore-bundle — Sigstore bundles (cosign's new format): a DSSE statement about the digest, verified with @sigstore/verify offline. */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as SigstoreBundle from '@sigstore/bundle';
import type { Bundle } from '@sigstore/bundle';
import type * as SigstoreVerify from '@sigstore/verify';
import type { SignedEntity, TrustMaterial, VerificationPolicy } from '@sigstore/verify';
import type * as ChainCheck from '@sigstore/verify/dist/key/certificate.js';
import type * as SctCheck from '@sigstore/verify/dist/key/sct.js';
import type { BundleTrust } from '../config/verify.js';
import { sameRepository, type SignatureVerdict } from './cosign.js';

const IN_TOTO = 'application/vnd.in-toto+json';

// Loaded at the first bundle checked, not at start-up: the packages cost about 0.1 s of CPU to
// load, and most sites verify no bundle (or none before their first request). require's cache
// keeps them once loaded.
const load = createRequire(import.meta.url);
const sigstore = () => ({
  ...(load('@sigstore/bundle') as typeof SigstoreBundle),
  ...(load('@sigstore/verify') as typeof SigstoreVerify),
  // Not re-exported by the package root: the chain check at the current time, for untimestamped bundles a config allows.
  ...(load('@sigstore/verify/dist/key/certificate.js') as typeof ChainCheck),
  ...(load('@sigstore/verify/dist/key/sct.js') as typeof SctCheck),
});

export interface BundleCheck {
  /** The bundle's JSON bytes, as stored. */
  readonly bytes: Buffer;
  /** The manifest digest the statement must name. */
  readonly digest: string;
  /** The repository as the upstream names it; the statement's subject must name it. */
  readonly repository: string;
  readonly keys: ReadonlyArray<{ readonly file: string; readonly key: KeyObject }>;
  /** Keyless bundles: the trusted root and identities; undefined when the entry does not accept them. */
  readonly keyless?: BundleTrust;
  readonly now: () => number;
}

/** Checks one bundle: the signature (by a configured key, or a certificate the trusted root vouches for), then what it claims. */
export function checkBundle(c: BundleCheck): SignatureVerdict {
  const { bundleFromJSON, toSignedEntity } = sigstore();
  let bundle: Bundle;
  let entity: SignedEntity;
  try {
    bundle = bundleFromJSON(JSON.parse(c.bytes.toString('utf8')));
    entity = toSignedEntity(bundle);
  } catch (err) {
    return { ok: false, reason: `a Sigstore bundle is not valid (${(err as Error).message})` };
  }
  const claim = readStatement(bundle, c.digest, c.repository);
  if (claim) return { ok: false, reason: claim };
  return entity.key.$case === 'public-key' ? byKey(c, entity) : byCertificate(c, entity);
}

/** A key-pair bundle names its key by a hint only: each configured key is tried. No timestamp is needed (the key is trusted, not a short-lived certificate). */
function byKey(c: BundleCheck, signed: SignedEntity): SignatureVerdict {
  // Without a trusted root a log entry cannot be checked: ignored, as for .sig signatures.
  const entity = c.keyless ? signed : { ...signed, timestamps: [], tlogEntries: [] };
  const { Verifier } = sigstore();
  for (const { file, key } of c.keys) {
    const material: TrustMaterial = {
      certificateAuthorities: [],
      timestampAuthorities: c.keyless?.material.timestampAuthorities ?? [],
      tlogs: c.keyless?.material.tlogs ?? [],
      ctlogs: [],
      publicKey: () => ({ publicKey: key, validFor: () => true }),
    };
    try {
      new Verifier(material, { tlogThreshold: 0, ctlogThreshold: 0, tsaThreshold: 0 }).verify(entity);
      return { ok: true, file };
    } catch {
      // the next key
    }
  }
  return { ok: false, reason: `a Sigstore bundle does not verify with any configured key (${c.keys.map((k) => k.file).join(', ') || 'none configured'})` };
}

/**
 * A certificate bundle (keyless): the certificate must chain to a CA of the trusted root at a
 * time the root can prove (a transparency log entry or a timestamp authority's timestamp), carry
 * the SCTs of the root's CT logs, and name a configured identity. Without a timestamp the chain
 * is checked at the current time, and only when the entry allows it (timestamps: optional).
 */
function byCertificate(c: BundleCheck, entity: SignedEntity): SignatureVerdict {
  const trust = c.keyless;
  if (!trust) return { ok: false, reason: 'a Sigstore bundle carries a certificate (keyless) and the verify: entry has no cosign.bundle/trustedroot' };
  const ctlogThreshold = trust.material.ctlogs.length > 0 ? 1 : 0;
  const policies: VerificationPolicy[] = trust.identities.map((i) => ({
    subjectAlternativeName: i.subject,
    ...(i.issuer ? { extensions: { issuer: i.issuer } } : {}),
  }));
  if (entity.timestamps.length === 0) {
    if (trust.timestamps === 'required')
      return {
        ok: false,
        reason: `a keyless Sigstore bundle has no transparency log entry or signed timestamp, so its short-lived certificate cannot be checked against ${trust.file} (set cosign.timestamps: optional to check it at the current time)`,
      };
    return untimestamped(c, trust, entity, ctlogThreshold, policies);
  }
  let last = '';
  const { Verifier } = sigstore();
  for (const policy of policies) {
    try {
      new Verifier(trust.material, { tlogThreshold: 0, tsaThreshold: 0, ctlogThreshold }).verify(entity, policy);
      return { ok: true, file: trust.file };
    } catch (err) {
      last = (err as Error).message;
    }
  }
  return { ok: false, reason: `a keyless Sigstore bundle does not verify against ${trust.file} for the configured identities (${last})` };
}

function untimestamped(c: BundleCheck, trust: BundleTrust, entity: SignedEntity, ctlogThreshold: number, policies: VerificationPolicy[]): SignatureVerdict {
  if (entity.key.$case !== 'certificate') return { ok: false, reason: 'a Sigstore bundle has no certificate' };
  const { Verifier, verifyCertificateChain, verifySCTs } = sigstore();
  try {
    const path = verifyCertificateChain(new Date(c.now()), entity.key.certificate, trust.material.certificateAuthorities);
    const leaf = path[0]!;
    if (ctlogThreshold > 0 && verifySCTs(leaf, path[1]!, trust.material.ctlogs).length < ctlogThreshold)
      throw new Error('no SCT of a CT log of the trusted root');
    const publicKey = leaf.publicKey;
    // The chain is proven above; the signature and the identity are checked by the library with this key.
    const material: TrustMaterial = { ...trust.material, publicKey: () => ({ publicKey: cryptoKey(publicKey), validFor: () => true }) };
    const asKey: SignedEntity = { ...entity, key: { $case: 'public-key', hint: '' } };
    new Verifier(material, { tlogThreshold: 0, tsaThreshold: 0, ctlogThreshold: 0 }).verify(asKey);
    const san = leaf.subjectAltName;
    const issuer = fulcioIssuer(leaf);
    const match = policies.some((p) => p.subjectAlternativeName === san && (!p.extensions?.issuer || p.extensions.issuer === issuer));
    if (!match) throw new Error(`certificate identity ${san ?? 'none'} (issuer ${issuer ?? 'none'}) is not a configured identity`);
    return { ok: true, file: trust.file };
  } catch (err) {
    return { ok: false, reason: `a keyless Sigstore bundle does not verify against ${trust.file} (${(err as Error).message})` };
  }
}

type Certificate = Extract<SignedEntity['key'], { $case: 'certificate' }>['certificate'];

function cryptoKey(der: Buffer): KeyObject {
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}

/** Fulcio's issuer extension (the OIDC issuer), v2 then v1, as @sigstore/verify reads it. */
function fulcioIssuer(cert: Certificate): string | undefined {
  const v2 = cert.extension('1.3.6.1.4.1.57264.1.8');
  if (v2) return v2.valueObj.subs?.[0]?.value.toString('ascii');
  return cert.extension('1.3.6.1.4.1.57264.1.1')?.value.toString('ascii');
}

/** Why the bundle's statement is not about this digest in this repository, or undefined when it is. */
function readStatement(bundle: Bundle, digest: string, repository: string): string | undefined {
  if (bundle.content.$case !== 'dsseEnvelope')
    return 'a Sigstore bundle holds a message signature, which does not carry what was signed (berth checks DSSE statements naming the image digest)';
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== IN_TOTO) return `a Sigstore bundle's payload is ${envelope.payloadType}, not an in-toto statement`;
  let statement: { subject?: Array<{ name?: unknown; digest?: Record<string, unknown> }> };
  try {
    statement = JSON.parse(Buffer.from(envelope.payload).toString('utf8')) as typeof statement;
  } catch {
    return "a Sigstore bundle's statement is not JSON";
  }
  const [algorithm, hex] = digest.split(':') as [string, string];
  const subjects = Array.isArray(statement.subject) ? statement.subject : [];
  const hit = subjects.find((s) => s?.digest?.[algorithm] === hex);
  if (!hit) return `a Sigstore bundle's statement is not about ${digest}`;
  if (typeof hit.name !== 'string' || !sameRepository(hit.name, repository))
    return `a Sigstore bundle's statement is for image ${String(hit.name)}, not repository ${repository}`;
  return undefined;
}
