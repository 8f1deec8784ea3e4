/** @module config/env — distribution-style REGISTRY_* environment overrides of the raw document. */

import { z } from 'zod';
import { documentSchema } from './schema.js';
import { formatPath, kindOf, schemaAt, unwrap } from './walk.js';
import { isMapping, parseYaml, type Tree } from './yaml.js';

export type KeyPath = (string | number)[];

export interface Overridden {
  readonly doc: Tree;
  readonly warnings: string[];
  /** Key path (as formatPath prints it) -> the variable that set it. */
  readonly origins: Map<string, string>;
}

const PREFIX = 'REGISTRY_';

/**
 * Applies `REGISTRY_<PATH>` variables the way distribution does: the path's `_`-separated words
 * name keys case-insensitively (REGISTRY_PROXY_REMOTEURL -> proxy.remoteurl), the value is read
 * as YAML, shorter names apply first so REGISTRY_PROXY cannot undo REGISTRY_PROXY_USERNAME.
 * A variable that names no key is ignored with a warning, as distribution does: orchestrators
 * set REGISTRY_* variables of their own (Kubernetes service links for a service called
 * "registry"). Berth-only extension: list entries are numbered, REGISTRY_UPSTREAMS_0_REMOTEURL.
 * An empty value unsets the key. As in distribution, REGISTRY_STORAGE=<driver> selects the driver.
 */
export function applyEnv(doc: Tree, env: Readonly<Record<string, string | undefined>>): Overridden {
  const root: Tree = isMapping(doc) ? structuredClone(doc) : {};
  const warnings: string[] = [];
  const origins = new Map<string, string>();
  const names = Object.keys(env)
    .filter((n) => n.startsWith(PREFIX) && n.length > PREFIX.length && env[n] !== undefined)
    .sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
  for (const name of names) {
    const segs = name.slice(PREFIX.length).split('_');
    const path = segs.includes('') ? undefined : resolve(documentSchema, root, segs);
    if (!path) {
      warnings.push(`${name}: environment variable ignored, it names no configuration key`);
      continue;
    }
    let value = envValue(env[name] ?? '', schemaAt(path));
    if (path.length === 1 && path[0] === 'storage' && typeof value === 'string') {
      // distribution: REGISTRY_STORAGE names the storage driver (REGISTRY_STORAGE=filesystem).
      const driver = value.toLowerCase();
      const current = isMapping(root) && isMapping(root.storage) ? root.storage[driver] : undefined;
      path.push(driver);
      value = isMapping(current) ? current : {};
    }
    const failed = setAt(root, path, value);
    if (failed) warnings.push(`${name}: environment variable ignored, ${failed}`);
    else origins.set(formatPath(path), name);
  }
  return { doc: root, warnings, origins };
}

const fold = (s: string) => s.toLowerCase().replaceAll('-', '_');

/** Key path named by `segs` below `schema`, or undefined. Tries the longest key first. */
function resolve(schema: z.ZodType, node: Tree | undefined, segs: string[]): KeyPath | undefined {
  if (segs.length === 0) return [];
  const kind = kindOf(schema);
  if (kind === 'ignored' || kind === 'unsupported') return freeKeys(node, segs);
  const s = unwrap(schema);
  if (s instanceof z.ZodObject) {
    for (let n = segs.length; n > 0; n--) {
      const key = segs.slice(0, n).join('_').toLowerCase();
      if (!Object.hasOwn(s.shape, key)) continue;
      const rest = resolve(s.shape[key] as z.ZodType, isMapping(node) ? node[key] : undefined, segs.slice(n));
      if (rest) return [key, ...rest];
    }
    return undefined;
  }
  if (s instanceof z.ZodRecord) {
    // Record values here are single values (log.fields, http.headers): the key takes every
    // remaining word. Header names have '-', which variable names cannot: '_' matches it.
    const wanted = segs.join('_');
    const existing = isMapping(node) ? Object.keys(node).find((k) => fold(k) === fold(wanted)) : undefined;
    return [existing ?? wanted.toLowerCase()];
  }
  if (s instanceof z.ZodArray) {
    const [first = '', ...rest] = segs;
    if (!/^\d+$/.test(first)) return undefined;
    const i = Number(first);
    const tail = resolve(s.element as z.ZodType, Array.isArray(node) ? node[i] : undefined, rest);
    return tail && [i, ...tail];
  }
  return undefined;
}

/** Below free-form content each word is one key: an existing key matching it, else the word in lower case. */
function freeKeys(node: Tree | undefined, segs: string[]): KeyPath {
  const out: KeyPath = [];
  let cur = node;
  for (const seg of segs) {
    const key = (isMapping(cur) ? Object.keys(cur).find((k) => fold(k) === fold(seg)) : undefined) ?? seg.toLowerCase();
    out.push(key);
    cur = isMapping(cur) ? cur[key] : undefined;
  }
  return out;
}

/**
 * The value as YAML, like distribution. Where a single value is expected, YAML that is not a
 * single value (`&x`, `a: b`, `[x]`) keeps the text as given rather than turning a password into
 * a mapping or nothing.
 */
function envValue(raw: string, target: z.ZodType | undefined): Tree {
  if (raw.trim() === '') return null;
  let parsed: Tree;
  try {
    parsed = parseYaml(raw);
  } catch {
    return raw;
  }
  const single = target !== undefined && kindOf(target) === undefined && unwrap(target) instanceof z.ZodUnknown;
  return single && typeof parsed !== 'string' ? raw : parsed;
}

/** Sets `value` at `path`, creating mappings and list entries on the way; returns why it could not. */
export function setAt(root: Tree, path: KeyPath, value: Tree): string | undefined {
  if (!isMapping(root)) return 'the document is not a mapping';
  let node: Tree = root;
  for (let i = 0; i < path.length; i++) {
    const key = path[i] as string | number;
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- without it tsc cannot infer the loop variable types
    const container = node as Tree[] | { [k: string]: Tree };
    if (i === path.length - 1) {
      (container as Record<string | number, Tree>)[key] = value;
      return undefined;
    }
    const next = path[i + 1];
    let child = (container as Record<string | number, Tree>)[key];
    if (typeof next === 'number') {
      if (!Array.isArray(child)) child = [];
      if (next > child.length) return `${formatPath(path.slice(0, i + 1))} has ${child.length} entries, so index ${next} is too far`;
    } else if (!isMapping(child)) {
      child = {};
    }
    (container as Record<string | number, Tree>)[key] = child;
    node = child;
  }
  return undefined;
}
