/** @module oci/mediatypes — manifest media types berth serves and how they are recognised. */

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST_V1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
export const DOCKER_MANIFEST_V1 = 'application/vnd.docker.distribution.manifest.v1+json';

export const MANIFEST_MEDIA_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST] as const;

/** The Accept header berth sends upstream: every manifest type it can store and serve. */
export const UPSTREAM_ACCEPT = [...MANIFEST_MEDIA_TYPES, DOCKER_MANIFEST_V1_SIGNED].join(', ');

export function isIndexType(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}

export function isManifestType(mediaType: string): boolean {
  return (MANIFEST_MEDIA_TYPES as readonly string[]).includes(mediaType) || mediaType === DOCKER_MANIFEST_V1_SIGNED || mediaType === DOCKER_MANIFEST_V1;
}

/** Splits an Accept header into bare media types (parameters and q-values dropped). */
export function parseAccept(header: string | string[] | undefined): string[] {
  const raw = Array.isArray(header) ? header.join(',') : (header ?? '');
  return raw
    .split(',')
    .map((part) => part.split(';')[0]!.trim().toLowerCase())
    .filter((t) => t.length > 0);
}

/**
 * Whether a client's Accept list allows a manifest type. No Accept header, wildcards, and the
 * schema 1 types (which every old client lists) accept anything, as registries have always done.
 */
export function accepts(accept: readonly string[], mediaType: string): boolean {
  if (accept.length === 0) return true;
  return accept.some((a) => a === mediaType || a === '*/*' || a === 'application/*' || a === 'application/json');
}

/**
 * Layers a registry need not hold: OCI non-distributable layers and Docker's foreign layers
 * (Windows base layers). Clients fetch them from the descriptor's `urls`; a manifest naming
 * them is accepted and served without their bytes.
 */
export function isNonDistributable(mediaType: string): boolean {
  return mediaType.startsWith('application/vnd.oci.image.layer.nondistributable.') || mediaType.startsWith('application/vnd.docker.image.rootfs.foreign.');
}
