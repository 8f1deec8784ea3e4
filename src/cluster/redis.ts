/** @module cluster/redis — one ioredis connection from the `redis:` config: every command time-boxed, nothing queued while Redis is away. */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { ClusterConfig } from '../config/types.js';

/**
 * Commands fail at once while disconnected (no offline queue) and after `commandMs` otherwise,
 * so a request that consults Redis never waits on it for long; the client keeps reconnecting in
 * the background and coordination resumes when Redis answers again.
 */
/** Every Redis key of a site starts with this: the site records, queue, held tags and uploads share it (their scripts rely on that). */
export function siteKeyPrefix(site: string): string {
  return `berth:${site}:`;
}

/** `name` is the connection's name in Redis's CLIENT LIST (no spaces), so an operator can tell which replica holds it. */
export function connectRedis(config: ClusterConfig['redis'], logger: Logger, name?: string): Redis {
  const tls = config.tls;
  const common: RedisOptions = {
    db: config.db,
    ...(config.username !== undefined ? { username: config.username } : {}),
    ...(config.password !== undefined ? { password: config.password } : {}),
    connectTimeout: config.connectMs,
    commandTimeout: config.commandMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    // Reconnect within a second of Redis's return: until then this replica works alone and may
    // fetch a blob the rest of the site is already fetching.
    retryStrategy: (attempt) => Math.min(250 * attempt, 1_000),
    ...(name !== undefined ? { connectionName: name } : {}),
    ...(tls
      ? {
          tls: {
            ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
            ...(tls.certificate !== undefined ? { cert: tls.certificate } : {}),
            ...(tls.key !== undefined ? { key: tls.key } : {}),
            rejectUnauthorized: !tls.insecure,
          },
        }
      : {}),
  };
  const redis =
    config.mastername !== undefined
      ? new Redis({
          ...common,
          name: config.mastername,
          sentinels: config.addrs.map((a) => ({ host: a.host, port: a.port })),
          ...(config.sentinelUsername !== undefined ? { sentinelUsername: config.sentinelUsername } : {}),
          ...(config.sentinelPassword !== undefined ? { sentinelPassword: config.sentinelPassword } : {}),
        })
      : new Redis({ ...common, host: config.addrs[0]!.host, port: config.addrs[0]!.port });
  let down = false;
  redis.on('error', (err: Error) => {
    if (!down) logger.warn({ err: err.message }, 'redis unreachable; this replica works alone until it answers');
    down = true;
  });
  redis.on('ready', () => {
    if (down) logger.info('redis answers again; coordinating with the site');
    down = false;
  });
  return redis;
}
