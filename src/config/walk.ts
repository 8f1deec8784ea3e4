/** @module config/walk — finding a key's schema, kind and documentation by its path in the config.yml document. */

import { z } from 'zod';
import { keyKinds, type KeyKind } from './fields.js';
import { documentSchema } from './schema.js';

/** Strips optional/default wrappers and transforms down to the schema that shapes the input. */
export function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let next = unwrapOnce(s); next !== s; next = unwrapOnce(s)) s = next;
  return s;
}

export function kindOf(schema: z.ZodType): KeyKind | undefined {
  return keyKinds.get(unwrap(schema))?.kind;
}

/** The schema of `key` inside `schema` (a mapping key or a list index), if any. */
export function childSchema(schema: z.ZodType, key: string | number): z.ZodType | undefined {
  const s = unwrap(schema);
  if (s instanceof z.ZodObject && typeof key === 'string') {
    return Object.hasOwn(s.shape, key) ? (s.shape[key] as z.ZodType) : undefined;
  }
  if (s instanceof z.ZodRecord && typeof key === 'string') return s.valueType as z.ZodType;
  if (s instanceof z.ZodArray && typeof key === 'number') return s.element as z.ZodType;
  return undefined;
}

export function schemaAt(path: readonly PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = documentSchema;
  for (const k of path) s = s && typeof k !== 'symbol' ? childSchema(s, k) : undefined;
  return s;
}

/** `upstreams[0].ca` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : `${out ? '.' : ''}${String(k)}`;
  return out || '(top level)';
}

/** What a key declares about itself (zod metadata on the key or the value builder under it). */
export interface KeyDoc {
  readonly description?: string;
  /** The default as config.yml would write it, or a sentence when it depends on other keys. */
  readonly default?: string;
  readonly example?: string;
  /** What its values are called: `duration`, `size`, `path`, ... */
  readonly valueType?: string;
  /** Its value is never printed (`berth config check` redacts it). */
  readonly secret?: boolean;
}

/** The metadata of every layer of `schema` (optional, pipe, ...), the outermost winning. */
export function keyDocOf(schema: z.ZodType): KeyDoc {
  const layers = [schema];
  for (let next = unwrapOnce(schema); next !== layers.at(-1); next = unwrapOnce(next)) layers.push(next);
  return Object.assign({}, ...layers.reverse().map((l) => z.globalRegistry.get(l) ?? {})) as KeyDoc;
}

function unwrapOnce(s: z.ZodType): z.ZodType {
  if (s instanceof z.ZodOptional || s instanceof z.ZodDefault) return s.unwrap() as z.ZodType;
  if (s instanceof z.ZodPipe) return (s.in instanceof z.ZodTransform ? s.out : s.in) as z.ZodType;
  return s;
}
