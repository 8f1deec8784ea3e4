/** @module cache/cosign — cosign's signature format: the simple signing payload, its signature, the artifacts that carry them. */
import { verify, type KeyObject } from 'node:crypto';
import type { Descriptor, ParsedManifest } from '../oci/manifest.js';

/** The media type of a layer holding cosign's simple signing payload. */
export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** The layer annotation holding the base64 signature over the payload. */
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** artifactType of a cosign signature stored as an OCI 1.1 referrer. */
export const COSIGN_SIG_ARTIFACT = 'application/vnd.dev.cosign.artifact.sig.v1+json';
/** A payload larger than this is not a simple signing payload (they are a few hundred bytes). */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

/** Media type of a Sigstore bundle (the layer of a bundle referrer, and its artifactType). */
export const SIGSTORE_BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** A bundle larger than this is not one cosign writes (a few kilobytes with a certificate chain). */
export const MAX_BUNDLE_BYTES = 256 * 1024;

/** The tag cosign gives the signatures of a manifest: `sha256-<hex>.sig`. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/**
 * The referrers tag schema's tag (`sha256-<hex>`): where a client writes the index of a digest's
 * referrers when the registry has no referrers API (OCI distribution spec 1.1, as cosign does).
 */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-');
}

/** The layers of a manifest that carry a Sigstore bundle. */
export function bundleLayers(m: ParsedManifest): Descriptor[] {
  return m.blobs.slice(1).filter((b) => b.mediaType === SIGSTORE_BUNDLE);
}

/** The layers of a manifest that carry a cosign signature. */
export function signatureLayers(m: ParsedManifest): Descriptor[] {
  return m.blobs.slice(1).filter((b) => b.mediaType === SIMPLE_SIGNING && typeof b.annotations?.[SIGNATURE_ANNOTATION] === 'string');
}

/**
 * A manifest that only carries signatures: every layer is a simple signing payload, which no
 * container runtime can unpack, so serving it unsigned gives a node nothing to run.
 */
export function isSignatureArtifact(m: ParsedManifest): boolean {
  const layers = m.blobs.slice(1);
  if (m.manifests.length > 0) return isReferrersIndex(m);
  return layers.length > 0 && layers.every((b) => b.mediaType === SIMPLE_SIGNING || b.mediaType === SIGSTORE_BUNDLE);
}

/**
 * An index listing referrers (the referrers tag schema's index): every entry is an artifact, not
 * a platform image. Serving it gives a node nothing to run; each entry is checked when asked for.
 */
export function isReferrersIndex(m: ParsedManifest): boolean {
  return m.blobs.length === 0 && m.manifests.length > 0 && m.manifests.every((d) => typeof d.artifactType === 'string' && d.platform === undefined);
}

export interface SignatureCheck {
  /** The layer's payload bytes, as stored. */
  readonly payload: Buffer;
  /** The base64 signature from the layer's annotation. */
  readonly signature: string;
  /** The manifest digest the signature must be for. */
  readonly digest: string;
  /** The repository as the upstream names it; the payload's docker-reference must name it. */
  readonly repository: string;
  readonly keys: ReadonlyArray<{ readonly file: string; readonly key: KeyObject }>;
}

export type SignatureVerdict = { readonly ok: true; readonly file: string } | { readonly ok: false; readonly reason: string };

/** Checks one cosign signature: the signature over the payload by a configured key, then what the payload claims. */
export function checkSignature(c: SignatureCheck): SignatureVerdict {
  const sig = Buffer.from(c.signature, 'base64');
  if (sig.length === 0) return { ok: false, reason: 'a signature annotation is empty' };
  const signer = c.keys.find(({ key }) => verifies(c.payload, sig, key));
  if (!signer) return { ok: false, reason: `a signature does not verify with any configured key (${c.keys.map((k) => k.file).join(', ')})` };
  const claim = readPayload(c.payload);
  if (typeof claim === 'string') return { ok: false, reason: claim };
  if (claim.digest !== c.digest) return { ok: false, reason: `a signature by ${signer.file} is for ${claim.digest}, not this digest` };
  if (!sameRepository(claim.reference, c.repository))
    return { ok: false, reason: `a signature by ${signer.file} is for image ${claim.reference}, not repository ${c.repository}` };
  return { ok: true, file: signer.file };
}

function verifies(payload: Buffer, sig: Buffer, key: KeyObject): boolean {
  try {
    // Ed25519 hashes internally (algorithm null); ECDSA and RSA sign the SHA-256 of the payload, ECDSA in DER.
    return verify(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', payload, key, sig);
  } catch {
    return false;
  }
}

/** The digest and image a simple signing payload is about, or why it is not one. */
export function readPayload(payload: Buffer): { digest: string; reference: string } | string {
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'a signed payload is not JSON';
  }
  const critical = (doc as { critical?: { image?: Record<string, unknown>; identity?: Record<string, unknown>; type?: unknown } } | null)?.critical;
  const digest = critical?.image?.['docker-manifest-digest'];
  const reference = critical?.identity?.['docker-reference'];
  if (typeof digest !== 'string' || typeof reference !== 'string' || typeof critical?.type !== 'string')
    return 'a signed payload is not a cosign simple signing payload (critical.image.docker-manifest-digest, critical.identity.docker-reference)';
  return { digest, reference };
}

/**
 * The payload names the image as the signer addressed it (`registry.example:5000/xing/app`);
 * berth's upstream may reach the same registry under another name, so the repository part is
 * compared, with Docker Hub's implied `library/`.
 */
export function sameRepository(reference: string, repository: string): boolean {
  let name = reference.split('@')[0]!;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) name = name.slice(0, colon);
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  if (first.includes('.') || first.includes(':') || first === 'localhost') name = name.slice(slash + 1);
  const norm = (n: string) => (n.includes('/') ? n : `library/${n}`);
  return norm(name) === norm(repository);
}
