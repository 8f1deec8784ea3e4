/** @module cluster/redis-uploads — the Redis implementation of the upload sessions port (rows only: an upload's bytes stay on the replica that took it). */
import type { Redis } from 'ioredis';
import { siteKeyPrefix } from './redis.js';
import type { UploadRow, UploadSessions } from '../ports/upload-sessions.js';

const TOUCH = `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'updatedAt', ARGV[1]) end return 1`;

export class RedisUploadSessions implements UploadSessions {
  private readonly p: string;

  constructor(
    private readonly redis: Redis,
    site: string,
    private readonly now: () => number,
  ) {
    this.p = `${siteKeyPrefix(site)}uploads:`;
  }

  private key(id: string): string {
    return `${this.p}row:${id}`;
  }

  async insert(id: string, upstream: string, repository: string): Promise<void> {
    const t = String(this.now());
    await this.redis.multi().hset(this.key(id), { upstream, repository, createdAt: t, updatedAt: t }).sadd(`${this.p}all`, id).exec();
  }

  async get(id: string): Promise<UploadRow | undefined> {
    return row(id, await this.redis.hgetall(this.key(id)));
  }

  async touch(id: string): Promise<void> {
    await this.redis.eval(TOUCH, 1, this.key(id), this.now());
  }

  async delete(id: string): Promise<void> {
    await this.redis.multi().del(this.key(id)).srem(`${this.p}all`, id).exec();
  }

  async all(): Promise<UploadRow[]> {
    const ids = await this.redis.smembers(`${this.p}all`);
    if (ids.length === 0) return [];
    const batch = this.redis.pipeline();
    for (const id of ids) batch.hgetall(this.key(id));
    const results = (await batch.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0]!;
    return ids.flatMap((id, i) => {
      const r = row(id, results[i]![1] as Record<string, string>);
      return r ? [r] : [];
    });
  }
}

function row(id: string, h: Record<string, string>): UploadRow | undefined {
  if (h['upstream'] === undefined) return undefined;
  return { id, upstream: h['upstream'], repository: h['repository'] ?? '', createdAt: Number(h['createdAt']), updatedAt: Number(h['updatedAt']) };
}
