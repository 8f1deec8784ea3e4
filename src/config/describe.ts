/** @module config/describe — the effective configuration printed in config.yml's own keys and units (`berth config check`), secrets redacted. */
import type { BerthConfig, Listener, UpstreamConfig } from './types.js';
import { formatDuration, formatSize } from './units.js';

const pem = (text: string) => `<${Buffer.byteLength(text)} bytes PEM>`;
const addr = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

function upstreamDoc(u: UpstreamConfig, single: boolean): Record<string, unknown> {
  return {
    ...(single ? {} : { name: u.name }),
    remoteurl: u.remoteurl,
    ...(u.username !== undefined ? { username: u.username } : {}),
    ...(u.password !== undefined ? { password: '<redacted>' } : {}),
    ...(u.hosts.length > 0 ? { hosts: [...u.hosts] } : {}),
    ...(u.prefix !== undefined ? { prefix: u.prefix } : {}),
    ...(single ? {} : { default: u.default }),
    ...(u.ca !== undefined ? { ca: pem(u.ca) } : {}),
    insecure: u.insecure,
    ...(u.resolve !== undefined ? { resolve: u.resolve } : {}),
    ...(u.clientcert ? { certificate: pem(u.clientcert.certificate), key: '<redacted>' } : {}),
    ...(u.tokenrealms.length > 0 ? { tokenrealms: [...u.tokenrealms] } : {}),
    ...(u.passthrough ? { passthroughauth: true, passthroughttl: formatDuration(u.passthrough.ttlMs), passthroughoutage: u.passthrough.outage } : {}),
    ttl: u.ttlMs === 0 ? '0s' : formatDuration(u.ttlMs),
    tagttl: formatDuration(u.tagttlMs),
    pushmode: u.pushmode,
    prefetch: u.prefetch,
    ...(u.ratelimit !== undefined ? { ratelimit: `${formatSize(u.ratelimit)}/s` } : {}),
    ...(u.backgroundwindow !== undefined ? { backgroundwindow: u.backgroundwindow.text } : {}),
  };
}

const listener = (l: Listener) => ({ addr: addr(l.host, l.port), ...(l.tls ? { tls: { ...l.tls } } : {}) });

/** A config.yml document that loads back to the same configuration (secrets and PEM bundles excepted). */
export function describeConfig(config: BerthConfig): Record<string, unknown> {
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
      ...(s.maxsize > 0 ? { maxsize: formatSize(s.maxsize), lowwatermark: s.lowwatermark } : {}),
      reserve: formatSize(s.reserve),
      delete: { enabled: s.deleteEnabled },
      maintenance: {
        uploadpurging: { enabled: s.uploadpurging.enabled, age: formatDuration(s.uploadpurging.ageMs), interval: formatDuration(s.uploadpurging.intervalMs) },
      },
    },
    http: {
      addr: addr(config.http.host, config.http.port),
      ...(Object.keys(config.http.headers).length ? { headers: JSON.parse(JSON.stringify(config.http.headers)) as unknown } : {}),
      ...(config.http.tls ? { tls: { ...config.http.tls } } : {}),
      ...(config.http.listeners.length ? { listeners: config.http.listeners.map(listener) } : {}),
      headerstimeout: formatDuration(config.http.limits.headersTimeoutMs),
      idletimeout: formatDuration(config.http.limits.idleTimeoutMs),
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
    ...(config.hub ? { hub: { token: '<redacted>' } } : {}),
    ...(config.site ? { site: { name: config.site.name, hub: config.site.hub, token: '<redacted>', interval: formatDuration(config.site.intervalMs) } } : {}),
    warm: {
      interval: formatDuration(config.warm.intervalMs),
      ...(config.warm.images.length ? { images: [...config.warm.images] } : {}),
      ...(config.warm.platforms.length ? { platforms: [...config.warm.platforms] } : {}),
      allplatforms: config.warm.allPlatforms,
    },
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
      ...(r.password !== undefined ? { password: '<redacted>' } : {}),
      db: r.db,
      dialtimeout: formatDuration(r.connectMs),
      readtimeout: formatDuration(r.commandMs),
      ...(r.tls ? { tls: { enabled: true, insecure: r.tls.insecure } } : {}),
    },
    cluster: { advertise: c.advertise, secret: '<redacted>', name: c.name },
  };
}

function describeAdmin(config: BerthConfig): Record<string, unknown> {
  const trust = config.adminTrustLoopback !== undefined ? { trustloopback: config.adminTrustLoopback } : {};
  if (config.admin) return { admin: { username: config.admin.username, password: '<redacted>', ...trust } };
  if (config.adminOpen) return { admin: { open: true, ...trust } };
  return config.adminTrustLoopback !== undefined ? { admin: trust } : {};
}
