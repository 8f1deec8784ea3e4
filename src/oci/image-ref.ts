/** @module oci/image-ref — image references as people write them: `[registry/]repository[:tag|@digest]`. */
import { isDigest } from './digest.js';
import { isRepositoryName, isTag, type ManifestReference } from './reference.js';

export interface ImageReference {
  /** The registry host named in front (`harbor.xing.com`, `127.0.0.1:5000`), if any. */
  readonly registry: string | undefined;
  readonly repository: string;
  /** What to fetch: the digest when one is given, else the tag (`latest` when neither is). */
  readonly reference: ManifestReference;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

/** Thrown for a reference that is not `[registry/]repository[:tag|@digest]`; the message says why. */
export class ImageReferenceError extends Error {
  constructor(input: string, why: string) {
    super(`invalid image reference "${input.slice(0, 300)}": ${why}; expected [registry/]repository[:tag|@digest], e.g. harbor.xing.com/xing/app:v1`);
    this.name = 'ImageReferenceError';
  }
}

/**
 * Parses the way docker and containerd do: the first path component is a registry when it has a
 * dot or a port, or is `localhost`; a `:` after the last `/` starts the tag; `@` starts the digest.
 */
export function parseImageReference(input: string): ImageReference {
  const s = input.trim();
  if (s === '') throw new ImageReferenceError(input, 'it is empty');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw new ImageReferenceError(input, `"${digest.slice(0, 200)}" is not a digest (sha256:<64 hex>)`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isTag(tag)) throw new ImageReferenceError(input, `"${tag.slice(0, 200)}" is not a valid tag`);
  }
  let registry: string | undefined;
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first.toLowerCase();
      rest = rest.slice(slash + 1);
    }
  }
  if (!isRepositoryName(rest))
    throw new ImageReferenceError(input, `"${rest.slice(0, 200)}" is not a valid repository name (lower-case components separated by /)`);
  const reference: ManifestReference = digest ? { kind: 'digest', digest } : { kind: 'tag', tag: tag ?? 'latest' };
  return { registry, repository: rest, reference, tag: digest ? tag : (tag ?? 'latest'), digest };
}

/** The canonical text of a parsed reference. */
export function formatImageReference(ref: ImageReference): string {
  const name = ref.registry ? `${ref.registry}/${ref.repository}` : ref.repository;
  return `${name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
