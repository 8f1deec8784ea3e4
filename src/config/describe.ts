/**
 * @module config/describe — the effective configuration printed in config.yml's own keys (`berth config check`):
 * units and redaction follow each key's declaration in config/schema.
 */
import { type z } from 'zod';
import { documentSchema } from './schema.js';
import type { BerthConfig, Listener, UpstreamConfig } from './types.js';
import { formatDuration, formatSize } from './units.js';
import { childSchema, keyDocOf } from './walk.js';
import { isMapping } from './yaml.js';

const pem = (text: string) => `<${Buffer.byteLength(text)} bytes PEM>`;
const addr = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

function upstreamDoc(u: UpstreamConfig, single: boolean): Record<string, unknown> {
  return {
    ...(single ? {} : { name: u.name }),
    remoteurl: u.remoteurl,
    ...(u.username !== undefined ? { username: u.username } : {}),
    ...(u.password !== undefined ? { password: u.password } : {}),
    ...(u.hosts.length > 0 ? { hosts: [...u.hosts] } : {}),
    ...(u.prefix !== undefined ? { prefix: u.prefix } : {}),
    ...(single ? {} : { default: u.default }),
    ...(u.ca !== undefined ? { ca: pem(u.ca) } : {}),
    insecure: u.insecure,
    ...(u.resolve !== undefined ? { resolve: u.resolve } : {}),
    ...(u.clientcert ? { certificate: pem(u.clientcert.certificate), key: u.clientcert.key } : {}),
    ...(u.tokenrealms.length > 0 ? { tokenrealms: [...u.tokenrealms] } : {}),
    ...(u.passthrough ? { passthroughauth: true, passthroughttl: u.passthrough.ttlMs, passthroughoutage: u.passthrough.outage } : {}),
    // 0 means never: written 0s, as the reference's example does.
    ttl: u.ttlMs === 0 ? '0s' : u.ttlMs,
    tagttl: u.tagttlMs,
    pushmode: u.pushmode,
    prefetch: u.prefetch,
    rangefetch: u.rangefetch,
    rangequiet: u.rangequietMs,
    ...(u.ratelimit !== undefined ? { ratelimit: u.ratelimit } : {}),
    ...(u.backgroundwindow !== undefined ? { backgroundwindow: u.backgroundwindow.text } : {}),
  };
}

const listener = (l: Listener) => ({ addr: addr(l.host, l.port), ...(l.tls ? { tls: { ...l.tls } } : {}) });

/** A config.yml document that loads back to the same configuration (secrets and PEM bundles excepted). */
export function describeConfig(config: BerthConfig): Record<string, unknown> {
  return asWritten(documentOf(config), documentSchema) as Record<string, unknown>;
}

/**
 * The value as config.yml writes it, by the schema of its key: milliseconds of a duration key as
 * `15m`, bytes of a size key as `50GiB`, a rate as `4MiB/s`; a secret key's value redacted.
 */
function asWritten(value: unknown, schema: z.ZodType | undefined): unknown {
  const doc = schema ? keyDocOf(schema) : {};
  if (doc.secret && value !== undefined) return '<redacted>';
  if (Array.isArray(value)) return value.map((v: unknown, i) => asWritten(v, schema && childSchema(schema, i)));
  if (isMapping(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, asWritten(v, schema && childSchema(schema, k))]));
  if (typeof value !== 'number') return value;
  if (doc.valueType === 'duration') return formatDuration(value);
  if (doc.valueType === 'size') return formatSize(value);
  if (doc.valueType === 'rate') return `${formatSize(value)}/s`;
  return value;
}

/** The configuration in config.yml's keys, values in BerthConfig's units. */
function documentOf(config: BerthConfig): Record<string, unknown> {
  const single = config.upstreams.length === 1 && config.upstreams[0]!.name === 'default';
  const s = config.storage;
  return {
    version: 0.1,
    log: {
      level: config.log.level,
      ...(Object.keys(config.log.fields).length ? { fields: { ...config.log.fields } } : {}),
      accesslog: { disabled: !config.log.accesslog },
    },
    storage: {
      filesystem: { rootdirectory: s.rootdirectory },
      ...(s.maxsize > 0 ? { maxsize: s.maxsize, lowwatermark: s.lowwatermark } : {}),
      reserve: s.reserve,
      delete: { enabled: s.deleteEnabled },
      maintenance: {
        uploadpurging: { enabled: s.uploadpurging.enabled, age: s.uploadpurging.ageMs, interval: s.uploadpurging.intervalMs },
        keptranges: { age: s.keptranges.ageMs },
      },
    },
    http: {
      addr: addr(config.http.host, config.http.port),
      ...(Object.keys(config.http.headers).length ? { headers: JSON.parse(JSON.stringify(config.http.headers)) as unknown } : {}),
      ...(config.http.tls ? { tls: { ...config.http.tls } } : {}),
      ...(config.http.listeners.length ? { listeners: config.http.listeners.map(listener) } : {}),
      headerstimeout: config.http.limits.headersTimeoutMs,
      idletimeout: config.http.limits.idleTimeoutMs,
      maxconnections: config.http.limits.maxConnections,
      maxconnectionsperclient: config.http.limits.maxConnectionsPerClient,
      workers: config.http.workers,
      sendfile: config.http.sendfile,
    },
    ...(single
      ? { proxy: upstreamDoc(config.upstreams[0]!, true) }
      : config.upstreams.length
        ? { upstreams: config.upstreams.map((u) => upstreamDoc(u, false)) }
        : {}),
    ...(config.auth ? { auth: JSON.parse(JSON.stringify(config.auth)) as unknown } : {}),
    ...describeAdmin(config),
    ...(config.hub ? { hub: { token: config.hub.token } } : {}),
    ...(config.site ? { site: { name: config.site.name, hub: config.site.hub, token: config.site.token, interval: config.site.intervalMs } } : {}),
    warm: {
      interval: config.warm.intervalMs,
      ...(config.warm.images.length ? { images: [...config.warm.images] } : {}),
      ...(config.warm.platforms.length ? { platforms: [...config.warm.platforms] } : {}),
      allplatforms: config.warm.allPlatforms,
    },
    ...(config.verify.length
      ? {
          verify: config.verify.map((v) => ({
            repositories: [...v.repositories],
            mode: v.mode,
            cosign: {
              keys: v.keys.map((k) => k.file),
              ...(v.keyless
                ? { bundle: true, trustedroot: v.keyless.file, identities: v.keyless.identities.map((i) => ({ ...i })), timestamps: v.keyless.timestamps }
                : {}),
            },
          })),
        }
      : {}),
    ...(config.cluster ? clusterDoc(config.cluster) : {}),
  };
}

/** `redis:` and `cluster:` as written, secrets redacted. */
function clusterDoc(c: NonNullable<BerthConfig['cluster']>): Record<string, unknown> {
  const r = c.redis;
  const addrs = r.addrs.map((a) => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`);
  return {
    redis: {
      ...(addrs.length === 1 && r.mastername === undefined ? { addr: addrs[0] } : { addrs, mastername: r.mastername }),
      ...(r.username !== undefined ? { username: r.username } : {}),
      ...(r.password !== undefined ? { password: r.password } : {}),
      db: r.db,
      dialtimeout: r.connectMs,
      readtimeout: r.commandMs,
      ...(r.tls ? { tls: { enabled: true, insecure: r.tls.insecure } } : {}),
    },
    cluster: { advertise: c.advertise, secret: c.secret, name: c.name },
  };
}

function describeAdmin(config: BerthConfig): Record<string, unknown> {
  const trust = config.adminTrustLoopback !== undefined ? { trustloopback: config.adminTrustLoopback } : {};
  if (config.admin) return { admin: { username: config.admin.username, password: config.admin.password, ...trust } };
  if (config.adminOpen) return { admin: { open: true, ...trust } };
  return config.adminTrustLoopback !== undefined ? { admin: trust } : {};
}
