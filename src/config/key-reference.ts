/** @module config/key-reference — docs/configuration.md, generated from the schema's declarations (`npm run docs:config`). */

import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { documentSchema } from './schema.js';
import { keyDocOf, kindOf, unwrap, type KeyDoc } from './walk.js';

/** The command that rewrites docs/configuration.md; the test that keeps it current names it. */
export const REGENERATE = 'npm run docs:config';

interface Key {
  /** `upstreams[].name` */
  readonly path: string;
  readonly name: string;
  readonly type: string;
  readonly required: boolean;
  readonly doc: KeyDoc;
  readonly section: boolean;
}

interface Keys {
  readonly keys: Key[];
  /** distribution's keys berth accepts with a warning and does not use. */
  readonly ignored: string[];
  /** distribution's keys berth refuses. */
  readonly refused: string[];
}

/** Every key below `schema`, in declaration order, depth first. */
function collect(schema: z.ZodObject, path: string, into: Keys): Keys {
  for (const [name, child] of Object.entries(schema.shape)) {
    const p = path ? `${path}.${name}` : name;
    const kind = kindOf(child);
    if (kind === 'ignored' || kind === 'unsupported') {
      (kind === 'ignored' ? into.ignored : into.refused).push(p);
      continue;
    }
    const u = unwrap(child);
    const element = u instanceof z.ZodArray ? unwrap(u.element as z.ZodType) : undefined;
    const nested = u instanceof z.ZodObject ? u : element instanceof z.ZodObject ? element : undefined;
    into.keys.push({ path: p, name, type: typeName(child), required: !(child instanceof z.ZodOptional), doc: keyDocOf(child), section: nested !== undefined });
    if (nested) collect(nested, nested === u ? p : `${p}[]`, into);
  }
  return into;
}

function typeName(schema: z.ZodType): string {
  const u = unwrap(schema);
  if (u instanceof z.ZodObject) return 'mapping';
  if (u instanceof z.ZodArray) {
    const e = u.element as z.ZodType;
    return unwrap(e) instanceof z.ZodObject ? 'list of mappings' : `list of ${typeName(e)}`;
  }
  if (u instanceof z.ZodRecord) return `mapping of names to ${typeName(u.valueType as z.ZodType)}`;
  return keyDocOf(schema).valueType ?? 'value';
}

/** distribution's environment override of a key: REGISTRY_ and the path in capitals, list entries numbered. */
function envName(path: string): string {
  return `REGISTRY_${path.toUpperCase().replaceAll('[]', '_<n>').replaceAll('.', '_')}`;
}

function entry(k: Key): string {
  const depth = k.path.split(/\.|\[\]/).length;
  const lines = [`${depth === 1 ? '##' : '###'} \`${k.path}\``, ''];
  if (!k.doc.description && !k.section) throw new Error(`config key ${k.path} has no description in src/config/schema.ts`);
  if (k.doc.description) lines.push(k.doc.description, '');
  const facts = [`- Type: ${k.type}${k.required ? ' (required in its section)' : ''}`];
  if (k.doc.default !== undefined) facts.push(`- Default: ${k.doc.default}`);
  if (k.doc.example !== undefined) facts.push(`- Example: \`${k.name}: ${k.doc.example}\``);
  if (!k.section) facts.push(`- Environment: \`${envName(k.path)}\``);
  if (k.doc.secret) facts.push('- Secret: `berth config check` prints it as <redacted>');
  return [...lines, ...facts, ''].join('\n');
}

/** The whole of docs/configuration.md. */
export function configurationReference(): string {
  const { keys, ignored, refused } = collect(documentSchema, '', { keys: [], ignored: [], refused: [] });
  const sections = keys.filter((k) => !k.path.includes('.') && !k.path.includes('['));
  return [
    '# Configuration reference',
    '',
    `<!-- Generated from src/config/schema.ts by \`${REGENERATE}\`; edit the schema, not this file. -->`,
    '',
    'berth reads a distribution `config.yml`: the keys below, plus the keys distribution knows that berth accepts',
    'unused (listed at the end, one warning each). An unknown key or an invalid value stops berth with a message',
    'naming the key path, the value and what is allowed. `berth config check FILE` prints the effective configuration.',
    '',
    'Sizes are a byte count or a number with a unit (`500MB`, `10GiB`); durations are numbers with units',
    '(`90s`, `15m`, `1h30m`). Relative paths in a file are relative to the file. An environment variable',
    'overrides a key as distribution reads it, `REGISTRY_` and the key path in capitals joined by `_`; list',
    'entries are numbered (`REGISTRY_UPSTREAMS_0_REMOTEURL`). Flags of `berth serve` override both.',
    '',
    `Sections: ${sections.map((k) => `[\`${k.path}\`](#${k.path})`).join(', ')}.`,
    '',
    ...keys.map(entry),
    '## Accepted for compatibility, not used',
    '',
    'distribution knows these keys; berth accepts them with one warning each and does not use them.',
    '',
    ...ignored.map((p) => `- \`${p}\``),
    '',
    '## Refused',
    '',
    'berth stores on local disk only: these storage drivers are refused with an error.',
    '',
    ...refused.map((p) => `- \`${p}\``),
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(configurationReference());
}
