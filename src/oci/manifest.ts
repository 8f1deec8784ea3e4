/** @module oci/manifest — parsing manifests and indexes into the descriptors they reference. */
import { MAX_MANIFEST_BYTES, manifestTooLarge } from './errors.js';
import { manifestInvalid } from './error-catalogue.js';
import { isDigest } from './digest.js';
import { DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED, OCI_INDEX, OCI_MANIFEST, isIndexType, isManifestType } from './mediatypes.js';

/** Manifests larger than this are refused, as distribution and the spec's guidance do. */
export const MAX_MANIFEST_SIZE = MAX_MANIFEST_BYTES;
/** Descriptors (layers plus config, or an index's entries) one manifest may list; registries bound it too. */
export const MAX_DESCRIPTORS = 1024;
/**
 * Bytes of annotations (as JSON, the manifest's own and every descriptor's together) and
 * artifactType one pushed manifest may carry: a referrers list copies them into each entry, so
 * this bounds every entry of a referrers page (see cache/referrers).
 */
export const MAX_ANNOTATION_BYTES = 64 * 1024;
/** Nesting of objects and arrays; real manifests stay under ten, and deeper JSON overflows the stack when written back. */
export const MAX_JSON_DEPTH = 64;

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly platform?: { readonly os?: string; readonly architecture?: string; readonly variant?: string };
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ParsedManifest {
  readonly mediaType: string;
  /** Blobs this manifest needs (config and layers); empty for an index. */
  readonly blobs: readonly Descriptor[];
  /** Child manifests of an index. */
  readonly manifests: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * Parses manifest bytes. The media type comes from the document's own `mediaType` field, else the
 * Content-Type it arrived with, else its shape (an OCI manifest may omit the field).
 */
export function parseManifest(body: Uint8Array, contentType?: string): ParsedManifest {
  if (body.length > MAX_MANIFEST_SIZE) throw manifestTooLarge(body.length);
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (jsonDepth(text) > MAX_JSON_DEPTH) throw manifestInvalid(`manifest nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw manifestInvalid('manifest is not valid JSON');
  }
  if (!isRecord(doc)) throw manifestInvalid('manifest must be a JSON object');
  const declared = typeof doc['mediaType'] === 'string' ? doc['mediaType'] : undefined;
  const header = contentType?.split(';')[0]?.trim();
  let mediaType = declared ?? (header && isManifestType(header) ? header : undefined);
  if (!mediaType) mediaType = Array.isArray(doc['manifests']) ? OCI_INDEX : OCI_MANIFEST;
  if (!isManifestType(mediaType)) throw manifestInvalid(`unsupported manifest media type "${mediaType.slice(0, 200)}"`);
  if (mediaType === DOCKER_MANIFEST_V1 || mediaType === DOCKER_MANIFEST_V1_SIGNED) return parseSchema1(doc, mediaType);

  const subject = doc['subject'] === undefined ? undefined : descriptor(doc['subject'], 'subject');
  const artifactType = typeof doc['artifactType'] === 'string' ? doc['artifactType'] : undefined;
  const annotations = isRecord(doc['annotations']) ? (doc['annotations'] as Record<string, string>) : undefined;
  if (isIndexType(mediaType)) {
    if (!Array.isArray(doc['manifests'])) throw manifestInvalid('index has no "manifests" array');
    tooMany(doc['manifests'].length);
    const manifests = doc['manifests'].map((d, i) => descriptor(d, `manifests[${i}]`));
    return { mediaType, blobs: [], manifests, subject, artifactType, annotations };
  }
  const blobs: Descriptor[] = [];
  if (doc['config'] !== undefined) blobs.push(descriptor(doc['config'], 'config'));
  else throw manifestInvalid('manifest has no "config" descriptor');
  const layers = doc['layers'] ?? [];
  if (!Array.isArray(layers)) throw manifestInvalid('"layers" must be an array');
  tooMany(layers.length + 1);
  layers.forEach((d, i) => blobs.push(descriptor(d, `layers[${i}]`)));
  const configType = blobs[0]?.mediaType;
  return { mediaType, blobs, manifests: [], subject, artifactType: artifactType ?? configType, annotations };
}

/**
 * A pushed schema 2 manifest or index: `schemaVersion` is the JSON integer 2 as written. JSON.parse
 * turns `2.0`, `2e0` and `1e999` into numbers that no longer show how they were written, and Go
 * registries refuse anything but an integer there, so the literal is read from the text (the last
 * top-level occurrence, as JSON.parse keeps the last).
 */
export function assertSchemaVersion2(body: Uint8Array): void {
  const literal = topLevelLiteral(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'), 'schemaVersion');
  if (literal !== '2') {
    const shown = literal === undefined ? 'missing' : literal.slice(0, 40);
    throw manifestInvalid(`schemaVersion must be the integer 2 (it is ${shown})`, { schemaVersion: shown });
  }
}

const JSON_SPACE = new Set([' ', '\t', '\n', '\r']);

/** The raw text of a top-level member's value in valid JSON (a string value shows as its opening quote); one linear pass. */
function topLevelLiteral(text: string, key: string): string | undefined {
  let depth = 0;
  let found: string | undefined;
  const skipSpace = (j: number): number => {
    while (JSON_SPACE.has(text[j] ?? '')) j++;
    return j;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 123 || c === 91) depth++;
    else if (c === 125 || c === 93) depth--;
    else if (c === 34) {
      const start = i;
      for (i++; i < text.length && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92) i++;
      let j = skipSpace(i + 1);
      if (depth !== 1 || text[j] !== ':') continue;
      const raw = text.slice(start, i + 1);
      if ((raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1)) !== key) continue;
      j = skipSpace(j + 1);
      if (text[j] === '"') {
        found = '"';
        continue;
      }
      let k = j;
      while (k < text.length && !',}]'.includes(text[k]!) && !JSON_SPACE.has(text[k]!)) k++;
      found = text.slice(j, k);
    }
  }
  return found;
}

/** What a manifest brings into a referrers entry and beyond: its annotations everywhere, and its artifactType. */
function annotationBytes(m: ParsedManifest): number {
  let total = m.artifactType === undefined ? 0 : Buffer.byteLength(m.artifactType);
  for (const d of [m, ...m.blobs, ...m.manifests, ...(m.subject ? [m.subject] : [])]) {
    if (d.annotations) total += Buffer.byteLength(JSON.stringify(d.annotations));
  }
  return total;
}

/** Refuses (400 MANIFEST_INVALID, naming the cap) a pushed manifest over MAX_ANNOTATION_BYTES. */
export function checkAnnotations(m: ParsedManifest): void {
  const bytes = annotationBytes(m);
  if (bytes > MAX_ANNOTATION_BYTES) {
    throw manifestInvalid(`manifest annotations and artifactType take ${bytes} bytes; the limit is ${MAX_ANNOTATION_BYTES} bytes (64 KiB) per manifest`, {
      limit: MAX_ANNOTATION_BYTES,
    });
  }
}

function parseSchema1(doc: Record<string, unknown>, mediaType: string): ParsedManifest {
  const layers = Array.isArray(doc['fsLayers']) ? doc['fsLayers'] : [];
  tooMany(layers.length);
  const blobs = layers.flatMap((l): Descriptor[] => {
    const sum = isRecord(l) ? l['blobSum'] : undefined;
    return typeof sum === 'string' && isDigest(sum) ? [{ mediaType: 'application/octet-stream', digest: sum, size: -1 }] : [];
  });
  return { mediaType, blobs, manifests: [] };
}

function descriptor(value: unknown, where: string): Descriptor {
  if (!isRecord(value)) throw manifestInvalid(`${where} is not a descriptor object`);
  const { mediaType, digest, size } = value;
  if (typeof digest !== 'string' || !isDigest(digest)) throw manifestInvalid(`${where}.digest is missing or invalid`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw manifestInvalid(`${where}.size is missing or invalid`);
  const platform = isRecord(value['platform']) ? (value['platform'] as Descriptor['platform']) : undefined;
  const artifactType = typeof value['artifactType'] === 'string' ? value['artifactType'] : undefined;
  const annotations = isRecord(value['annotations']) ? (value['annotations'] as Record<string, string>) : undefined;
  return { mediaType: typeof mediaType === 'string' ? mediaType : 'application/octet-stream', digest, size, platform, artifactType, annotations };
}

function tooMany(count: number): void {
  if (count > MAX_DESCRIPTORS) throw manifestInvalid(`manifest lists ${count} descriptors; the limit is ${MAX_DESCRIPTORS}`, { limit: MAX_DESCRIPTORS });
}

/** Deepest nesting of `{`/`[` outside strings, in one linear pass before JSON.parse. */
function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 125 || c === 93) depth--;
  }
  return max;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The entry an index offers a client that cannot read indexes: linux/amd64, as distribution picks. */
export function defaultPlatform(index: ParsedManifest): Descriptor | undefined {
  return index.manifests.find((d) => d.platform?.os === 'linux' && d.platform.architecture === 'amd64');
}
