/** @module oci/digest — digest grammar, parsing and streaming hash computation. */
import { createHash, type Hash } from 'node:crypto';
import { digestInvalid } from './error-catalogue.js';

export type Algorithm = 'sha256' | 'sha512';

const ENCODED_LENGTH: Record<Algorithm, number> = { sha256: 64, sha512: 128 };
const GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export interface ParsedDigest {
  readonly algorithm: Algorithm;
  readonly encoded: string;
  readonly digest: string;
}

/** Parses and validates a digest string; throws DIGEST_INVALID for anything berth cannot verify. */
export function parseDigest(value: string): ParsedDigest {
  if (!GRAMMAR.test(value)) throw digestInvalid(`invalid digest "${truncate(value)}": expected <algorithm>:<hex>`);
  const [algorithm, encoded] = value.split(':', 2) as [string, string];
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw digestInvalid(`unsupported digest algorithm "${truncate(algorithm)}": berth verifies sha256 and sha512`);
  }
  if (encoded.length !== ENCODED_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(encoded)) {
    throw digestInvalid(`invalid ${algorithm} digest "${truncate(value)}": expected ${ENCODED_LENGTH[algorithm]} lowercase hex characters`);
  }
  return { algorithm, encoded, digest: value };
}

export function isDigest(value: string): boolean {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

/** Incremental hasher that yields the digest string in the same algorithm as the expected one. */
export class Digester {
  readonly algorithm: Algorithm;
  private readonly hash: Hash;
  bytes = 0;

  constructor(algorithm: Algorithm = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }

  digest(): string {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

export function digestOf(data: Uint8Array, algorithm: Algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}
