/** @module config/schema — the config.yml document: distribution's keys plus berth's, and their checks. */

import { z } from 'zod';
import {
  configVersion,
  count,
  duration,
  flag,
  HEADER_NAME,
  headerValues,
  httpUrl,
  ignored,
  imageRef,
  ipAddress,
  keyKinds,
  listenAddr,
  oneOf,
  pathText,
  pathPrefix,
  platform,
  workerCount,
  ratio,
  registryHost,
  size,
  show,
  text,
  unsupported,
  upstreamName,
  type KeyKind,
} from './fields.js';
import type { AccessAction, OutageMode, PushMode } from './types.js';
import { isMapping, type Tree } from './yaml.js';
import { budgetKeys, checkFleet, hubSchema, siteSchema } from './fleet.js';
import { clusterSchema, redisSchema } from './cluster.js';

export const PUSH_MODES = ['readonly', 'local', 'write-through', 'write-behind'] as const satisfies readonly PushMode[];
export const ACCESS_ACTIONS = ['pull', 'push', 'delete', '*'] as const satisfies readonly AccessAction[];
export const OUTAGE_MODES = ['lastknown', 'deny'] as const satisfies readonly OutageMode[];
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const driver = (name: string) => unsupported(`storage driver "${name}" is not supported; allowed: filesystem (berth stores on local disk only)`);

const storageSchema = z.strictObject({
  filesystem: z.strictObject({ rootdirectory: pathText().optional(), maxthreads: ignored() }).optional(),
  maxsize: size().optional(),
  lowwatermark: ratio().optional(),
  reserve: size().optional(),
  delete: z.strictObject({ enabled: flag().optional() }).optional(),
  cache: ignored(),
  maintenance: z
    .strictObject({
      uploadpurging: z.strictObject({ enabled: flag().optional(), age: duration().optional(), interval: duration().optional(), dryrun: ignored() }).optional(),
      readonly: ignored(),
    })
    .optional(),
  redirect: ignored(),
  tag: ignored(),
  inmemory: driver('inmemory'),
  s3: driver('s3'),
  azure: driver('azure'),
  gcs: driver('gcs'),
  swift: driver('swift'),
  oss: driver('oss'),
});

const httpSchema = z.strictObject({
  addr: listenAddr().optional(),
  headers: z
    .record(z.string().regex(HEADER_NAME, 'invalid header name; allowed: an HTTP header name such as X-Content-Type-Options'), headerValues())
    .optional(),
  tls: z
    .strictObject({
      certificate: pathText().optional(),
      key: pathText().optional(),
      clientcas: ignored(),
      clientauth: ignored(),
      letsencrypt: ignored(),
      minimumtls: ignored(),
      ciphersuites: ignored(),
    })
    .optional(),
  listeners: z.array(z.strictObject({ addr: listenAddr(), tls: z.strictObject({ certificate: pathText(), key: pathText() }).optional() })).optional(),
  // berth's own bounds against hostile or broken clients (docs/security.md: Request limits).
  headerstimeout: duration().optional(),
  idletimeout: duration().optional(),
  maxconnections: count().optional(),
  maxconnectionsperclient: count().optional(),
  // berth: serving processes sharing the store and the listening addresses (docs/large-sites.md: Every core).
  workers: workerCount().optional(),
  // berth: stored blobs go from file to plain TCP sockets inside the kernel (docs/large-sites.md: Zero-copy serving).
  sendfile: flag().optional(),
  net: ignored(),
  prefix: ignored(),
  host: ignored(),
  secret: ignored(),
  relativeurls: ignored(),
  draintimeout: ignored(),
  debug: ignored(),
  http2: ignored(),
  h2c: ignored(),
});

/** Keys shared by `proxy:` and each `upstreams:` entry. */
const upstreamKeys = {
  remoteurl: httpUrl(),
  username: text().optional(),
  password: text().optional(),
  passwordfile: pathText().optional(),
  hosts: z.array(registryHost()).optional(),
  ca: pathText().optional(),
  insecure: flag().optional(),
  ttl: duration().optional(),
  tagttl: duration().optional(),
  prefetch: flag().optional(),
  pushmode: oneOf(PUSH_MODES).optional(),
  dockerconfig: pathText().optional(),
  certificate: pathText().optional(),
  key: pathText().optional(),
  tokenrealms: z.array(registryHost()).optional(),
  resolve: ipAddress().optional(),
  passthroughauth: flag().optional(),
  passthroughttl: duration().optional(),
  passthroughoutage: oneOf(OUTAGE_MODES).optional(),
  ...budgetKeys,
};

const ruleSchema = z.strictObject({
  users: z.array(text()),
  repositories: z.array(text()).optional(),
  actions: z.array(oneOf(ACCESS_ACTIONS)),
  upstream: upstreamName().optional(),
});

export const documentSchema = z.strictObject({
  version: configVersion().optional(),
  log: z
    .strictObject({
      level: oneOf(LOG_LEVELS, { warning: 'warn', panic: 'fatal' }).optional(),
      fields: z.record(z.string(), text()).optional(),
      accesslog: z.strictObject({ disabled: flag().optional() }).optional(),
      formatter: ignored(),
      hooks: ignored(),
      reportcaller: ignored(),
    })
    .optional(),
  storage: storageSchema.optional(),
  http: httpSchema.optional(),
  proxy: z.strictObject({ ...upstreamKeys, exec: ignored() }).optional(),
  upstreams: z.array(z.strictObject({ name: upstreamName(), ...upstreamKeys, prefix: pathPrefix().optional(), default: flag().optional() })).optional(),
  auth: z
    .strictObject({
      htpasswd: z.strictObject({ realm: text().optional(), path: pathText() }).optional(),
      rules: z.array(ruleSchema).optional(),
      token: ignored(),
      silly: ignored(),
    })
    .optional(),
  admin: z
    .strictObject({
      username: text().optional(),
      password: text().optional(),
      passwordfile: pathText().optional(),
      open: flag().optional(),
      trustloopback: flag().optional(),
    })
    .optional(),
  warm: z
    .strictObject({
      interval: duration().optional(),
      images: z.array(imageRef()).optional(),
      platforms: z.array(platform()).optional(),
      allplatforms: flag().optional(),
    })
    .optional(),
  hub: hubSchema.optional(),
  site: siteSchema.optional(),
  loglevel: ignored(),
  redis: redisSchema.optional(),
  cluster: clusterSchema.optional(),
  notifications: ignored(),
  health: ignored(),
  middleware: ignored(),
  reporting: ignored(),
  compatibility: ignored(),
  validation: ignored(),
  policy: ignored(),
  catalog: ignored(),
});

export type BerthDocument = z.output<typeof documentSchema>;

// ---- walking the schema (shared with config/env) ----

/** Strips optional/default wrappers and transforms down to the schema that shapes the input. */
export function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault) s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPipe) s = (s.in instanceof z.ZodTransform ? s.out : s.in) as z.ZodType;
    else return s;
  }
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

// ---- validation ----

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
