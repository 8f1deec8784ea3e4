/** @module config/yaml — YAML text to a plain tree whose scalars stay exactly as written. */

import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';

/**
 * Scalars are kept as text (YAML's failsafe schema) and each config field parses its own, as Go's
 * typed unmarshalling does: a password `0123` stays "0123" instead of becoming the number 123.
 */
export type Tree = string | null | Tree[] | { [key: string]: Tree };

export class YamlSyntaxError extends Error {
  constructor(
    message: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(message);
    this.name = 'YamlSyntaxError';
  }
}

/** Plain scalars that mean "no value" in YAML's core schema. */
const NULLS = new Set(['', '~', 'null', 'Null', 'NULL']);

/** Parses one YAML document; throws YamlSyntaxError (message `line L, column C: ...`). */
export function parseYaml(text: string): Tree {
  const lines = new LineCounter();
  const doc = parseDocument(text, { schema: 'failsafe', uniqueKeys: true, prettyErrors: true, lineCounter: lines });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const what = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    throw new YamlSyntaxError(pos ? `line ${pos.line}, column ${pos.col}: ${what}` : what, pos?.line, pos?.col);
  }
  return toTree(doc, lines, doc.contents);
}

function toTree(doc: Document, lines: LineCounter, node: Node | null | undefined): Tree {
  if (node === null || node === undefined) return null;
  if (isAlias(node)) return toTree(doc, lines, node.resolve(doc));
  if (isScalar(node)) {
    const v = node.value === null || node.value === undefined ? '' : String(node.value);
    return node.type === 'PLAIN' && NULLS.has(v) ? null : v;
  }
  if (isSeq(node)) return node.items.map((item) => toTree(doc, lines, item as Node | null));
  if (isMap(node)) {
    const entries: [string, Tree][] = [];
    for (const pair of node.items) {
      const key = toTree(doc, lines, pair.key as Node | null);
      if (typeof key !== 'string') {
        const at = (pair.key as Node | null)?.range?.[0] ?? node.range?.[0] ?? 0;
        const pos = lines.linePos(at);
        throw new YamlSyntaxError(`line ${pos.line}, column ${pos.col}: a mapping key must be a word`, pos.line, pos.col);
      }
      entries.push([key, toTree(doc, lines, pair.value as Node | null)]);
    }
    // fromEntries defines own properties, so a key like "__proto__" stays an ordinary (unknown) key.
    return Object.fromEntries(entries);
  }
  throw new YamlSyntaxError('unsupported YAML node');
}

export function isMapping(v: unknown): v is { [key: string]: Tree } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
