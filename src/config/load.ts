/** @module config/load — builds the frozen BerthConfig from file, REGISTRY_* environment, flags and defaults. */

import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { candidateHosts, dockerConfigCredentials } from './dockerconfig.js';
import { applyEnv, setAt } from './env.js';
import { pushGuardProblems } from './pushguard.js';
import type { BerthDocument } from './schema.js';
import type { BerthConfig, UpstreamConfig } from './types.js';
import { validateDocument } from './validate.js';
import { formatPath } from './walk.js';
import {
  DEFAULT_CONNECTION_LIMITS,
  DEFAULT_LOWWATERMARK,
  DEFAULT_PASSTHROUGH_TTL_MS,
  DEFAULT_PORT,
  DEFAULT_REMOTE_URL,
  DEFAULT_RESERVE_BYTES,
  DEFAULT_ROOT,
  DEFAULT_TAGTTL_MS,
  DEFAULT_TIMEOUTS,
  DEFAULT_TOKEN_EXPIRATION_MS,
  DEFAULT_TOKEN_SERVICE,
  DEFAULT_UPLOAD_AGE_MS,
  DEFAULT_KEPT_RANGES_AGE_MS,
  DEFAULT_RANGE_QUIET_MS,
  DEFAULT_UPLOAD_PURGE_INTERVAL_MS,
  DEFAULT_WARM_INTERVAL_MS,
  defaultMaxConnections,
  TOKEN_KEY_FILE,
} from './defaults.js';
import { buildVerify } from './verify.js';
import { buildFleet } from './fleet.js';
import { isMapping, parseYaml, YamlSyntaxError, type Tree } from './yaml.js';
import { buildCluster, buildRedis } from './cluster.js';
import { UsageError } from '../oci/errors.js';

/** The `berth serve` flags that stand in for a config file. */
export interface ServeFlags {
  listen?: string;
  root?: string;
  /** A registry URL, or `none` for no upstream at all (a plain registry). */
  upstream?: string;
  username?: string;
  passwordFile?: string;
  /** http.workers: `auto` or a count. */
  workers?: string;
}

/** Everything wrong with a configuration, one problem per line: a usage error (exit 2). */
export class ConfigError extends UsageError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }

  override report(): string {
    return `berth: invalid configuration:\n${this.message}`;
  }
}

export interface LoadOptions {
  /** Config file; relative to cwd. */
  file?: string;
  env: Record<string, string | undefined>;
  flags?: ServeFlags;
  cwd: string;
  /** The process's open-file limit, when known: the default connection bound stays under it. */
  fdLimit?: number;
}

export function loadConfig(opts: LoadOptions): { config: BerthConfig; warnings: string[] } {
  const cwd = resolve(opts.cwd);
  let raw: Tree = {};
  let baseDir = cwd;
  if (opts.file !== undefined) {
    const file = resolve(cwd, opts.file);
    baseDir = dirname(file);
    raw = readDocument(opts.file, file);
  }
  const { doc, warnings: envWarnings, origins } = applyEnv(raw, opts.env);
  const flagged = applyFlags(doc, opts.flags ?? {}, cwd, origins);
  if (opts.file === undefined && !flagged.noUpstream && isMapping(doc) && doc.upstreams === undefined) {
    const proxy = doc.proxy;
    if (!isMapping(proxy) || proxy.remoteurl === undefined) setAt(doc, ['proxy', 'remoteurl'], DEFAULT_REMOTE_URL);
  }
  const checked = validateDocument(doc, origins);
  const warnings = [...checked.warnings, ...envWarnings, ...flagged.warnings];
  const problems = [...flagged.problems, ...checked.problems];
  if (problems.length > 0 || !checked.doc) throw new ConfigError(problems);

  // Values set by a variable or flag are relative to where berth was started, not to the file.
  const where = (path: readonly (string | number)[], p: string) => {
    const key = formatPath(path);
    const fromOutside = [...origins.keys()].some((k) => key === k || key.startsWith(`${k}.`) || key.startsWith(`${k}[`));
    return resolve(fromOutside ? cwd : baseDir, p);
  };
  const built = build(checked.doc, cwd, where, problems, opts.fdLimit);
  const cluster = buildCluster(checked.doc, where, problems, warnings);
  const config: BerthConfig = withHubRedis(cluster ? { ...built, cluster } : built, checked.doc.redis, where, problems);
  if (problems.length === 0) problems.push(...pushGuardProblems(config, checked.doc.proxy ? ['proxy'] : config.upstreams.map((_, i) => `upstreams[${i}]`)));
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: deepFreeze(config), warnings };
}

function readDocument(name: string, file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${name}: cannot read the config file: ${reason(err)}`]);
  }
  let doc: Tree;
  try {
    doc = parseYaml(text);
  } catch (err) {
    if (err instanceof YamlSyntaxError) throw new ConfigError([`${name}: invalid YAML at ${err.message}`]);
    throw err;
  }
  if (doc === null) return {};
  if (!isMapping(doc)) throw new ConfigError([`${name}: the document must be a mapping of keys such as proxy: and storage:`]);
  return doc;
}

interface Flagged {
  readonly problems: string[];
  readonly warnings: string[];
  readonly noUpstream: boolean;
}

/** Flags win over file and environment; their paths are relative to cwd. */
function applyFlags(doc: Tree, flags: ServeFlags, cwd: string, origins: Map<string, string>): Flagged {
  const problems: string[] = [];
  const warnings: string[] = [];
  const set = (path: (string | number)[], value: string, flag: string) => {
    setAt(doc, path, value);
    origins.set(formatPath(path), flag);
  };
  if (flags.listen !== undefined) set(['http', 'addr'], flags.listen, '--listen');
  if (flags.workers !== undefined) set(['http', 'workers'], flags.workers, '--workers');
  if (flags.root !== undefined) set(['storage', 'filesystem', 'rootdirectory'], resolve(cwd, flags.root), '--root');
  if (!isMapping(doc)) return { problems, warnings, noUpstream: false };

  if (flags.upstream === 'none') {
    delete doc.proxy;
    delete doc.upstreams;
    if (flags.username !== undefined || flags.passwordFile !== undefined) {
      problems.push('--username, --password-file: need an upstream; allowed: omit them with --upstream none');
    }
    return { problems, warnings, noUpstream: true };
  }
  if (flags.upstream === undefined && flags.username === undefined && flags.passwordFile === undefined) {
    return { problems, warnings, noUpstream: false };
  }
  if (doc.upstreams !== undefined && doc.upstreams !== null) {
    problems.push('--upstream, --username, --password-file: the configuration lists upstreams; allowed: set these in its upstreams entries');
    return { problems, warnings, noUpstream: false };
  }
  const proxy = isMapping(doc.proxy) ? doc.proxy : undefined;
  const bare = (url: Tree | undefined) => (typeof url === 'string' ? url.replace(/\/+$/, '') : url);
  if (flags.upstream !== undefined && proxy && proxy.remoteurl !== undefined && bare(proxy.remoteurl) !== bare(flags.upstream)) {
    // Credentials configured for one registry must never be sent to another (docs/design.md §7).
    for (const key of ['username', 'password', 'passwordfile']) {
      if (proxy[key] !== undefined && !(key === 'username' ? flags.username : flags.passwordFile)) {
        warnings.push(`proxy.${key}: not used, --upstream names a different registry than proxy.remoteurl`);
      }
      delete proxy[key];
    }
  }
  if (flags.upstream !== undefined) set(['proxy', 'remoteurl'], flags.upstream, '--upstream');
  if (flags.username !== undefined) set(['proxy', 'username'], flags.username, '--username');
  if (flags.passwordFile !== undefined) {
    if (isMapping(doc.proxy)) delete doc.proxy.password;
    set(['proxy', 'passwordfile'], resolve(cwd, flags.passwordFile), '--password-file');
  }
  return { problems, warnings, noUpstream: false };
}

type Where = (path: readonly (string | number)[], p: string) => string;
type UpstreamDoc = NonNullable<BerthDocument['upstreams']>[number];

function build(doc: BerthDocument, cwd: string, where: Where, problems: string[], fdLimit: number | undefined): BerthConfig {
  const proxy = doc.proxy;
  const entries = doc.upstreams ?? [];
  const upstreams: UpstreamConfig[] = proxy
    ? [upstream({ ...proxy, name: 'default', default: true }, ['proxy'], where, problems)]
    : entries.map((u, i) =>
        // A lone upstream serves requests naming no registry unless it says otherwise.
        upstream({ ...u, default: u.default ?? entries.length === 1 }, ['upstreams', i], where, problems),
      );
  const addr = doc.http?.addr;
  const tls = doc.http?.tls;
  const htpasswd = doc.auth?.htpasswd;
  const rules = doc.auth?.rules;
  // With realm the token keys name an external issuer, which berth accepts and does not use.
  const token = doc.auth?.token && doc.auth.token.realm === undefined ? doc.auth.token : undefined;
  const root = doc.storage?.filesystem?.rootdirectory;
  const admin = doc.admin;
  const adminPassword =
    admin?.passwordfile !== undefined
      ? readText(['admin', 'passwordfile'], where(['admin', 'passwordfile'], admin.passwordfile), problems)?.replace(/[\r\n]+$/, '')
      : admin?.password;
  if (adminPassword === '') problems.push('admin.password: empty; allowed: a non-empty password (or a passwordfile holding one)');
  if (adminPassword !== undefined && Buffer.byteLength(adminPassword) > 72) {
    problems.push(`admin.password: ${Buffer.byteLength(adminPassword)} bytes; allowed: at most 72 (longer passwords are refused at login, as bcrypt does)`);
  }
  return {
    log: {
      level: doc.log?.level ?? 'info',
      fields: doc.log?.fields ?? {},
      accesslog: !(doc.log?.accesslog?.disabled ?? false),
    },
    storage: {
      rootdirectory: root !== undefined ? where(['storage', 'filesystem', 'rootdirectory'], root) : resolve(cwd, DEFAULT_ROOT),
      maxsize: doc.storage?.maxsize ?? 0,
      lowwatermark: doc.storage?.lowwatermark ?? DEFAULT_LOWWATERMARK,
      reserve: doc.storage?.reserve ?? DEFAULT_RESERVE_BYTES,
      deleteEnabled: doc.storage?.delete?.enabled ?? false,
      uploadpurging: {
        enabled: doc.storage?.maintenance?.uploadpurging?.enabled ?? true,
        ageMs: doc.storage?.maintenance?.uploadpurging?.age ?? DEFAULT_UPLOAD_AGE_MS,
        intervalMs: doc.storage?.maintenance?.uploadpurging?.interval ?? DEFAULT_UPLOAD_PURGE_INTERVAL_MS,
      },
      keptranges: { ageMs: doc.storage?.maintenance?.keptranges?.age ?? DEFAULT_KEPT_RANGES_AGE_MS },
    },
    http: {
      host: addr?.host ?? '',
      port: addr?.port ?? DEFAULT_PORT,
      headers: doc.http?.headers ?? {},
      limits: {
        headersTimeoutMs: doc.http?.headerstimeout ?? DEFAULT_CONNECTION_LIMITS.headersTimeoutMs,
        idleTimeoutMs: doc.http?.idletimeout ?? DEFAULT_CONNECTION_LIMITS.idleTimeoutMs,
        maxConnections: doc.http?.maxconnections ?? defaultMaxConnections(fdLimit),
        maxConnectionsPerClient: doc.http?.maxconnectionsperclient ?? DEFAULT_CONNECTION_LIMITS.maxConnectionsPerClient,
      },
      workers: doc.http?.workers ?? 'auto',
      sendfile: doc.http?.sendfile ?? true,
      ...(tls?.certificate !== undefined && tls.key !== undefined
        ? { tls: { certificate: where(['http', 'tls', 'certificate'], tls.certificate), key: where(['http', 'tls', 'key'], tls.key) } }
        : {}),
      listeners: (doc.http?.listeners ?? []).map((l, i) => ({
        host: l.addr.host,
        port: l.addr.port,
        ...(l.tls
          ? {
              tls: {
                certificate: where(['http', 'listeners', i, 'tls', 'certificate'], l.tls.certificate),
                key: where(['http', 'listeners', i, 'tls', 'key'], l.tls.key),
              },
            }
          : {}),
      })),
    },
    upstreams,
    upstreamTimeouts: { ...DEFAULT_TIMEOUTS },
    ...(htpasswd || rules || token
      ? {
          auth: {
            ...(token
              ? {
                  token: {
                    service: token.service ?? DEFAULT_TOKEN_SERVICE,
                    expirationMs: token.expiration ?? DEFAULT_TOKEN_EXPIRATION_MS,
                    key:
                      token.key !== undefined
                        ? where(['auth', 'token', 'key'], token.key)
                        : join(root !== undefined ? where(['storage', 'filesystem', 'rootdirectory'], root) : resolve(cwd, DEFAULT_ROOT), TOKEN_KEY_FILE),
                    generated: token.key === undefined,
                  },
                }
              : {}),
            ...(htpasswd ? { htpasswd: { realm: htpasswd.realm ?? 'berth', path: where(['auth', 'htpasswd', 'path'], htpasswd.path) } } : {}),
            ...(rules ? { rules: rules.map((r) => ({ ...r, repositories: r.repositories ?? ['*'] })) } : {}),
          },
        }
      : {}),
    ...(admin?.username !== undefined && adminPassword !== undefined ? { admin: { username: admin.username, password: adminPassword } } : {}),
    ...(admin?.open ? { adminOpen: true } : {}),
    ...(admin?.trustloopback !== undefined ? { adminTrustLoopback: admin.trustloopback } : {}),
    warm: {
      intervalMs: doc.warm?.interval ?? DEFAULT_WARM_INTERVAL_MS,
      images: doc.warm?.images ?? [],
      platforms: doc.warm?.platforms ?? [],
      allPlatforms: doc.warm?.allplatforms ?? false,
    },
    verify: buildVerify(doc.verify, where, problems),
    ...buildFleet(doc, where, problems),
  };
}

function upstream(u: UpstreamDoc, path: (string | number)[], where: Where, problems: string[]): UpstreamConfig {
  let username = u.username;
  let password = u.password;
  if (u.passwordfile !== undefined) {
    const text = readText([...path, 'passwordfile'], where([...path, 'passwordfile'], u.passwordfile), problems);
    password = text?.replace(/[\r\n]+$/, '');
    if (password === '')
      problems.push(`${formatPath([...path, 'passwordfile'])}: file ${JSON.stringify(u.passwordfile)} is empty; allowed: a file holding the password`);
  }
  if (u.dockerconfig !== undefined) {
    const key = [...path, 'dockerconfig'];
    const text = readText(key, where(key, u.dockerconfig), problems);
    try {
      if (text !== undefined) ({ username, password } = dockerConfigCredentials(text, candidateHosts(u.remoteurl, u.hosts ?? [])));
    } catch (err) {
      problems.push(`${formatPath(key)}: file ${JSON.stringify(u.dockerconfig)} ${(err as Error).message}`);
    }
  }
  const pem = (key: 'ca' | 'certificate' | 'key', marker: RegExp, what: string, allowed = what): string | undefined => {
    const file = u[key];
    if (file === undefined) return undefined;
    const text = readText([...path, key], where([...path, key], file), problems);
    if (text !== undefined && !marker.test(text)) {
      problems.push(`${formatPath([...path, key])}: file ${JSON.stringify(file)} holds no PEM ${what}; allowed: a PEM ${allowed}`);
    }
    return text;
  };
  const ca = pem('ca', /-----BEGIN CERTIFICATE-----/, 'certificate', 'CA bundle');
  const certificate = pem('certificate', /-----BEGIN CERTIFICATE-----/, 'certificate');
  const clientKey = pem('key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'private key');
  return {
    name: u.name,
    remoteurl: u.remoteurl,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    hosts: u.hosts ?? [],
    ...(u.prefix !== undefined ? { prefix: u.prefix } : {}),
    default: u.default ?? false,
    ...(ca !== undefined ? { ca } : {}),
    insecure: u.insecure ?? false,
    ...(u.resolve !== undefined ? { resolve: u.resolve } : {}),
    ...(certificate !== undefined && clientKey !== undefined ? { clientcert: { certificate, key: clientKey } } : {}),
    tokenrealms: u.tokenrealms ?? [],
    ...(u.passthroughauth ? { passthrough: { ttlMs: u.passthroughttl ?? DEFAULT_PASSTHROUGH_TTL_MS, outage: u.passthroughoutage ?? 'lastknown' } } : {}),
    tagttlMs: u.tagttl ?? DEFAULT_TAGTTL_MS,
    prefetch: u.prefetch ?? false,
    rangefetch: u.rangefetch ?? true,
    rangequietMs: u.rangequiet ?? DEFAULT_RANGE_QUIET_MS,
    ttlMs: u.ttl ?? 0,
    pushmode: u.pushmode ?? 'readonly',
    ...(u.ratelimit !== undefined ? { ratelimit: u.ratelimit } : {}),
    ...(u.backgroundwindow !== undefined ? { backgroundwindow: u.backgroundwindow } : {}),
  };
}

function readText(path: (string | number)[], file: string, problems: string[]): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${formatPath(path)}: cannot read file ${JSON.stringify(file)}: ${reason(err)}`);
    return undefined;
  }
}

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return (err as Error).message;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** A hub with `redis:` keeps its state there and shares it with the other hubs on it (docs/fleet.md). */
function withHubRedis(config: BerthConfig, redis: Parameters<typeof buildRedis>[0] | undefined, where: Where, problems: string[]): BerthConfig {
  if (!config.hub) return config;
  if (!redis) {
    if (config.hub.advertise !== undefined)
      problems.push('hub.advertise: set without redis:; allowed: only with redis: (the hubs sharing it forward to the lead)');
    return config;
  }
  if (config.hub.advertise === undefined)
    problems.push('hub.advertise: required with redis: (the other hubs forward to this one while it leads); allowed: an http(s) URL');
  return { ...config, hub: { ...config.hub, redis: config.cluster?.redis ?? buildRedis(redis, where, problems) } };
}
