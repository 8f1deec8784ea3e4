/** @module config/cluster — the `redis:` and `cluster:` sections: one replica of a site's several, coordinated through Redis. */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { duration, flag, httpUrl, ignored, pathText, text, upstreamName } from './fields.js';
import { formatDuration } from './units.js';

/** Every Redis call gives up after this long by default: Redis helps, it never holds a request up. */
export const DEFAULT_REDIS_TIMEOUT_MS = 1_000;

/**
 * distribution's `redis:` keys: 2.x `addr`, 3.x `addrs` (with `mastername`, Sentinel), `username`,
 * `password`, `db`, `tls` (2.x `enabled`; 3.x `certificate`, `key`, `clientcas`) and the
 * timeouts. Pool tuning is distribution's own business: accepted, unused.
 */
export const redisSchema = z
  .strictObject({
    addr: text().optional().meta({ description: 'host:port of the Redis server (distribution 2.x).', example: '10.0.0.9:6379' }),
    addrs: z
      .array(text())
      .optional()
      .meta({ description: 'Redis addresses (distribution 3.x); several are Sentinels and need mastername.', example: '[10.0.0.9:26379, 10.0.0.10:26379]' }),
    mastername: text().optional().meta({ description: 'Name of the master the Sentinels watch.' }),
    username: text().optional().meta({ description: 'Redis ACL user.' }),
    password: text().optional().meta({ description: 'Redis password; never printed.', secret: true }),
    sentinelusername: text().optional().meta({ description: 'User for the Sentinels.' }),
    sentinelpassword: text().optional().meta({ description: 'Password for the Sentinels.', secret: true }),
    db: text().optional().meta({ description: 'Database number.', default: '0' }),
    dialtimeout: duration()
      .optional()
      .meta({ description: 'Connect timeout.', default: formatDuration(DEFAULT_REDIS_TIMEOUT_MS) }),
    readtimeout: duration()
      .optional()
      .meta({
        description: 'Every Redis command gives up after this long: Redis helps, it never holds a request up.',
        default: formatDuration(DEFAULT_REDIS_TIMEOUT_MS),
      }),
    writetimeout: duration()
      .optional()
      .meta({ description: 'Read as readtimeout when that is not set.', default: formatDuration(DEFAULT_REDIS_TIMEOUT_MS) }),
    tls: z
      .strictObject({
        enabled: flag().optional().meta({ description: 'TLS to Redis (distribution 2.x); a tls: section means on unless this says false.', default: 'true' }),
        certificate: pathText().optional().meta({ description: 'PEM client certificate presented to Redis.' }),
        key: pathText().optional().meta({ description: 'PEM private key of certificate.' }),
        clientcas: z.array(pathText()).optional().meta({ description: 'PEM CA bundles trusted for the Redis server.' }),
        insecure: flag().optional().meta({ description: 'Skip TLS verification of Redis.', default: 'false' }),
      })
      .optional()
      .meta({ description: 'TLS to Redis.' }),
    pool: ignored(),
    maxretries: ignored(),
    minretrybackoff: ignored(),
    maxretrybackoff: ignored(),
  })
  .meta({ description: 'distribution’s Redis section: with cluster:, where the replicas of a site coordinate; without it, accepted and unused.' });

export const clusterSchema = z
  .strictObject({
    advertise: httpUrl().meta({ description: 'How the other replicas reach this one; unique per replica.', example: 'http://10.0.0.5:5000' }),
    secret: text().optional().meta({ description: 'Secret shared by the replicas, 16 characters or more; never printed.', secret: true }),
    secretfile: pathText().optional().meta({ description: 'File holding the secret, instead of secret.' }),
    name: upstreamName().optional().meta({ description: 'Replicas with the same name form one site (the Redis key prefix).', default: 'berth' }),
  })
  .meta({ description: 'This berth is one replica of a site’s several, coordinated through redis:.' });

type RedisDoc = z.output<typeof redisSchema>;
type ClusterDoc = z.output<typeof clusterSchema>;
type Where = (path: readonly (string | number)[], p: string) => string;

/** `cluster:` and `redis:`, files read, addresses parsed, timeouts in ms. */
export interface ClusterConfig {
  readonly advertise: string;
  readonly secret: string;
  readonly name: string;
  readonly redis: RedisConfig;
}

/** `redis:` as berth uses it (site replicas with `cluster:`, hubs with `hub:`). */
export interface RedisConfig {
  /** `redis.addr` or `redis.addrs`. */
  readonly addrs: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly mastername?: string;
  readonly username?: string;
  readonly password?: string;
  readonly sentinelUsername?: string;
  readonly sentinelPassword?: string;
  readonly db: number;
  /** `redis.dialtimeout`. */
  readonly connectMs: number;
  /** `redis.readtimeout` (or `writetimeout`). */
  readonly commandMs: number;
  /** `redis.tls`, PEM texts read; `ca` joins the `clientcas` files. */
  readonly tls?: { readonly certificate?: string; readonly key?: string; readonly ca?: string; readonly insecure: boolean };
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/**
 * Without `cluster:` (and without `hub:`), a `redis:` section keeps the meaning it had before berth
 * used Redis: accepted with one warning and unused, so a distribution config still starts one plain
 * cache. With `cluster:`, `redis:` is required and every key in it is checked.
 */
export function buildCluster(
  doc: { redis?: RedisDoc | undefined; cluster?: ClusterDoc | undefined; hub?: unknown },
  where: Where,
  problems: string[],
  warnings: string[],
): ClusterConfig | undefined {
  const { redis, cluster } = doc;
  if (!cluster) {
    if (redis && doc.hub === undefined)
      warnings.push('redis: accepted for compatibility with distribution, not used by berth (it coordinates replicas only with cluster: or hub:)');
    return undefined;
  }
  if (!redis) {
    problems.push('cluster: needs a redis: section (redis.addr or redis.addrs) to coordinate the replicas');
    return undefined;
  }
  const built = buildRedis(redis, where, problems);
  let secret = cluster.secret;
  if (cluster.secretfile !== undefined) {
    if (secret !== undefined) problems.push('cluster.secretfile: set together with cluster.secret; allowed: one of them');
    try {
      secret = readFileSync(where(['cluster', 'secretfile'], cluster.secretfile), 'utf8').replace(/[\r\n]+$/, '');
    } catch (err) {
      problems.push(`cluster.secretfile: cannot read file ${JSON.stringify(cluster.secretfile)}: ${(err as Error).message}`);
    }
  }
  if (secret === undefined) problems.push('cluster.secret: required key is missing; allowed: a shared secret of 16 characters or more (or cluster.secretfile)');
  else if (secret.length < 16) problems.push('cluster.secret: too short; allowed: a shared secret of 16 characters or more');
  return { advertise: cluster.advertise, secret: secret ?? '', name: cluster.name ?? 'berth', redis: built };
}

/** The `redis:` section checked key by key: addresses parsed, files read, timeouts in ms. */
export function buildRedis(redis: RedisDoc, where: Where, problems: string[]): RedisConfig {
  const addrs = redis.addrs ?? (redis.addr !== undefined ? [redis.addr] : []);
  if (addrs.length === 0) problems.push('redis.addr: required key is missing; allowed: host:port of Redis (or redis.addrs: [host:port, ...])');
  if (redis.addr !== undefined && redis.addrs !== undefined) problems.push('redis.addrs: set together with redis.addr; allowed: one of them');
  const hosts = addrs.map((a, i) => {
    const key = redis.addrs ? `redis.addrs[${i}]` : 'redis.addr';
    const m = HOST_PORT.exec(a.trim());
    if (!m || Number(m[2]) > 65535) {
      problems.push(`${key}: invalid address ${JSON.stringify(a)}; allowed: host:port, e.g. 10.0.0.9:6379`);
      return { host: '', port: 0 };
    }
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  });
  if (addrs.length > 1 && redis.mastername === undefined) {
    problems.push('redis.addrs: several addresses need redis.mastername (they are Sentinels); allowed: one address, or Sentinels with mastername');
  }
  const db = redis.db === undefined ? 0 : Number(redis.db);
  if (!Number.isInteger(db) || db < 0) problems.push(`redis.db: invalid value ${JSON.stringify(redis.db)}; allowed: a database number, 0 or more`);
  const tls = redis.tls;
  const tlsOn = tls !== undefined && (tls.enabled ?? true);
  const read = (key: string, file: string) => {
    try {
      return readFileSync(where(key.split('.'), file), 'utf8');
    } catch (err) {
      problems.push(`${key}: cannot read file ${JSON.stringify(file)}: ${(err as Error).message}`);
      return '';
    }
  };
  const timeout = redis.readtimeout ?? redis.writetimeout ?? DEFAULT_REDIS_TIMEOUT_MS;
  return {
    addrs: hosts,
    ...(redis.mastername !== undefined ? { mastername: redis.mastername } : {}),
    ...(redis.username !== undefined ? { username: redis.username } : {}),
    ...(redis.password !== undefined ? { password: redis.password } : {}),
    ...(redis.sentinelusername !== undefined ? { sentinelUsername: redis.sentinelusername } : {}),
    ...(redis.sentinelpassword !== undefined ? { sentinelPassword: redis.sentinelpassword } : {}),
    db,
    connectMs: redis.dialtimeout ?? DEFAULT_REDIS_TIMEOUT_MS,
    commandMs: timeout,
    ...(tlsOn
      ? {
          tls: {
            ...(tls.certificate !== undefined ? { certificate: read('redis.tls.certificate', tls.certificate) } : {}),
            ...(tls.key !== undefined ? { key: read('redis.tls.key', tls.key) } : {}),
            ...(tls.clientcas !== undefined ? { ca: tls.clientcas.map((f, i) => read(`redis.tls.clientcas.${i}`, f)).join('\n') } : {}),
            insecure: tls.insecure ?? false,
          },
        }
      : {}),
  };
}
