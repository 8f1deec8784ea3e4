/** @module oci/reference — repository name and tag grammar from the distribution spec, checked before any path is built. */
import { nameInvalid } from './error-catalogue.js';
import { isDigest } from './digest.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Names longer than this are refused: distribution's limit, and it keeps paths and keys bounded. */
export const MAX_NAME_LENGTH = 255;
export const MAX_NAME_COMPONENTS = 16;

export function isRepositoryName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && name.split('/').length <= MAX_NAME_COMPONENTS && NAME.test(name);
}

export function assertRepositoryName(name: string): string {
  if (!isRepositoryName(name)) {
    throw nameInvalid(`invalid repository name "${name.slice(0, 300)}"`, {
      name: name.slice(0, 300),
      grammar: 'lowercase components [a-z0-9]+ separated by . _ __ - and /, at most 255 characters',
    });
  }
  return name;
}

export function isTag(value: string): boolean {
  return TAG.test(value);
}

/** A manifest reference is either a tag or a digest. */
export type ManifestReference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: string };

export function parseManifestReference(value: string): ManifestReference | undefined {
  if (isTag(value)) return { kind: 'tag', tag: value };
  if (value.includes(':') && isDigest(value)) return { kind: 'digest', digest: value };
  return undefined;
}
