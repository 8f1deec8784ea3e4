/** @module config/validate — checks a raw config.yml document against the schema and the rules spanning several keys. */

import { z } from 'zod';
import { show } from './fields.js';
import { checkFleet } from './fleet.js';
import { documentSchema, type BerthDocument } from './schema.js';
import { childSchema, formatPath, kindOf, schemaAt, unwrap } from './walk.js';
import { isMapping, type Tree } from './yaml.js';

export interface Validated {
  /** Present when there are no problems. */
  readonly doc?: BerthDocument;
  readonly problems: string[];
  readonly warnings: string[];
}

/**
 * Checks a raw document and converts its values (sizes to bytes, durations to ms, ...).
 * `origins` maps key paths to where a value came from (an environment variable or a flag), so
 * a message about it can say so. All problems are reported, not just the first.
 */
export function validateDocument(raw: Tree, origins: ReadonlyMap<string, string> = new Map()): Validated {
  const warnings: string[] = [];
  const cleaned = normalize(raw, documentSchema, [], warnings);
  const problems: string[] = [];
  const add = (path: readonly PropertyKey[], message: string) => {
    const p = formatPath(path);
    // The most specific setter wins: REGISTRY_PROXY_PUSHMODE over REGISTRY_PROXY.
    const from = [...origins].filter(([k]) => p === k || p.startsWith(`${k}.`) || p.startsWith(`${k}[`)).sort(([a], [b]) => b.length - a.length)[0];
    problems.push(`${p}: ${message}${from ? ` (set by ${from[1]})` : ''}`);
  };
  const result = documentSchema.safeParse(cleaned ?? {}, { reportInput: true });
  if (!result.success) for (const issue of result.error.issues) describeIssue(issue, add);
  crossCheck(cleaned, add);
  checkFleet(cleaned, add);
  return problems.length === 0 && result.success ? { doc: result.data, problems, warnings } : { problems, warnings };
}

/** Drops keys set to null (YAML `key:` with nothing after it means unset, as in Go) and warns once per ignored key. */
function normalize(value: Tree, schema: z.ZodType | undefined, path: PropertyKey[], warnings: string[]): Tree {
  if (!schema || kindOf(schema) !== undefined) return value;
  if (Array.isArray(value)) return value.map((v, i) => normalize(v, childSchema(schema, i), [...path, i], warnings));
  if (!isMapping(value)) return value;
  const out: [string, Tree][] = [];
  for (const [k, v] of Object.entries(value)) {
    const child = childSchema(schema, k);
    if (child && kindOf(child) === 'ignored') {
      warnings.push(`${formatPath([...path, k])}: accepted for compatibility with distribution, not used by berth`);
    }
    if (v !== null) out.push([k, normalize(v, child, [...path, k], warnings)]);
  }
  return Object.fromEntries(out);
}

type Add = (path: readonly PropertyKey[], message: string) => void;

function describeIssue(issue: z.core.$ZodIssue, add: Add): void {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'unrecognized_keys':
      for (const key of issue.keys) {
        const known = allowedKeys(schemaAt(issue.path));
        add([...issue.path, key], `unknown key${known.length ? `; allowed here: ${known.join(', ')}` : ''}`);
      }
      return;
    case 'invalid_type': {
      if (input === undefined) return add(issue.path, 'required key is missing');
      const s = schemaAt(issue.path);
      const u = s && unwrap(s);
      const allowed =
        u instanceof z.ZodObject
          ? `a mapping with keys ${allowedKeys(u).join(', ')}`
          : u instanceof z.ZodArray
            ? 'a list'
            : u instanceof z.ZodRecord
              ? 'a mapping'
              : issue.expected;
      return add(issue.path, `invalid value: ${show(input)}; allowed: ${allowed}`);
    }
    case 'invalid_key':
      return add(issue.path, issue.issues[0]?.message.replace('; ', ` ${show(input)}; `) ?? `invalid key ${show(input)}`);
    default:
      return add(issue.path, issue.message);
  }
}

/** Keys a mapping may hold, leaving out the ones that are only there to be rejected. */
function allowedKeys(schema: z.ZodType | undefined): string[] {
  const s = schema && unwrap(schema);
  if (!(s instanceof z.ZodObject)) return [];
  return Object.entries(s.shape as Record<string, z.ZodType>)
    .filter(([, v]) => kindOf(v) !== 'unsupported')
    .map(([k]) => k);
}

/** Rules spanning several keys. Reads the raw document defensively so they run even when values are invalid. */
function crossCheck(doc: Tree, add: Add): void {
  if (!isMapping(doc)) return;
  const { proxy, upstreams, http } = doc;
  if (isMapping(proxy) && Array.isArray(upstreams)) {
    add(['upstreams'], 'proxy and upstreams are both set; allowed: one of them (proxy is the single-upstream form)');
  }
  const credentials = (section: Tree, path: PropertyKey[]) => {
    if (!isMapping(section)) return;
    if (section.password !== undefined && section.passwordfile !== undefined) {
      add([...path, 'passwordfile'], 'password and passwordfile are both set; allowed: one of them');
    }
    if (section.dockerconfig !== undefined) {
      for (const k of ['username', 'password', 'passwordfile']) {
        if (section[k] !== undefined) add([...path, k], `dockerconfig and ${k} are both set; allowed: credentials from one of them`);
      }
    }
    pair(section, path, 'certificate', 'key');
    if (section.passthroughauth === undefined || /^(false|no|off)$/i.test(String(section.passthroughauth))) {
      for (const k of ['passthroughttl', 'passthroughoutage']) {
        if (section[k] !== undefined) add([...path, k], 'only meaningful with passthroughauth: true; allowed: set passthroughauth: true or remove it');
      }
    }
  };
  credentials(proxy ?? null, ['proxy']);
  credentials(doc.admin ?? null, ['admin']);
  const adminOpen = isMapping(doc.admin) && /^(true|yes|on)$/i.test(String(doc.admin.open));
  const adminKeys = ['username', 'password', 'passwordfile'];
  if (isMapping(doc.admin) && adminOpen) {
    for (const k of adminKeys) {
      if (doc.admin[k] !== undefined) add(['admin', k], 'open: true and credentials are both set; allowed: one of them');
    }
    // admin: { trustloopback: … } alone is complete; credentials, once begun, need both halves.
  } else if (isMapping(doc.admin) && (doc.admin.trustloopback === undefined || adminKeys.some((k) => isMapping(doc.admin) && doc.admin[k] !== undefined))) {
    if (doc.admin.username === undefined) add(['admin', 'username'], 'required when admin is set (or admin.open: true to leave the admin API open)');
    if (doc.admin.password === undefined && doc.admin.passwordfile === undefined) {
      add(['admin', 'password'], 'required when admin is set; allowed: password or passwordfile');
    }
  }
  if (isMapping(doc.warm) && doc.warm.platforms !== undefined && /^(true|yes|on)$/i.test(String(doc.warm.allplatforms))) {
    add(['warm', 'allplatforms'], 'platforms and allplatforms are both set; allowed: one of them');
  }
  if (Array.isArray(upstreams)) {
    const seen = new Map<string, string>();
    let firstDefault: string | undefined;
    const unique = (what: string, value: Tree | undefined, path: PropertyKey[], fold = (s: string) => s) => {
      if (typeof value !== 'string') return;
      const key = `${what}\0${fold(value)}`;
      const first = seen.get(key);
      if (first) add(path, `duplicate ${what} ${show(value)} (also ${first}); allowed: each ${what} once across upstreams`);
      else seen.set(key, formatPath(path));
    };
    upstreams.forEach((u, i) => {
      if (!isMapping(u)) return;
      credentials(u, ['upstreams', i]);
      unique('name', u.name, ['upstreams', i, 'name']);
      unique('prefix', u.prefix, ['upstreams', i, 'prefix'], (s) => s.replace(/^\/+|\/+$/g, ''));
      if (Array.isArray(u.hosts)) u.hosts.forEach((h, j) => unique('host', h, ['upstreams', i, 'hosts', j], (s) => s.toLowerCase()));
      if (typeof u.default === 'string' && /^(true|yes|on)$/i.test(u.default)) {
        if (firstDefault) add(['upstreams', i, 'default'], `more than one upstream is the default (also ${firstDefault}); allowed: at most one`);
        else firstDefault = formatPath(['upstreams', i]);
      }
    });
  }
  const tls = isMapping(http) ? http.tls : undefined;
  if (isMapping(tls)) pair(tls, ['http', 'tls'], 'certificate', 'key');
  const rules = isMapping(doc.auth) ? doc.auth.rules : undefined;
  if (Array.isArray(rules)) {
    const names = Array.isArray(upstreams) ? upstreams.map((u) => (isMapping(u) ? u.name : undefined)) : isMapping(proxy) ? ['default'] : [];
    const htpasswd = isMapping(doc.auth) && doc.auth.htpasswd !== undefined;
    rules.forEach((r, i) => {
      const named = isMapping(r) && Array.isArray(r.users) ? r.users.filter((u) => typeof u === 'string' && u !== 'anonymous') : [];
      if (!htpasswd && named.length > 0) {
        add(
          ['auth', 'rules', i, 'users'],
          `${named.map((u) => show(u)).join(', ')} can never log in: auth.htpasswd is not set; allowed: anonymous, or set auth.htpasswd`,
        );
      }
      if (isMapping(r) && typeof r.upstream === 'string' && !names.includes(r.upstream)) {
        add(
          ['auth', 'rules', i, 'upstream'],
          `no upstream is named ${show(r.upstream)}; allowed: ${names.length ? names.map((n) => show(n)).join(', ') : 'none (no upstreams are configured: leave upstream out)'}`,
        );
      }
    });
  }

  function pair(section: { [k: string]: Tree }, path: PropertyKey[], a: string, b: string): void {
    if (section[a] !== undefined && section[b] === undefined) add([...path, b], `required when ${formatPath([...path, a])} is set`);
    if (section[b] !== undefined && section[a] === undefined) add([...path, a], `required when ${formatPath([...path, b])} is set`);
  }
}
