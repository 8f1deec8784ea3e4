/** @module ops/health — readiness: the store takes writes, has room for metadata, and the metadata answers; upstream state is reported only. */
import { randomUUID } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { BreakerState } from '../upstream/breaker.js';
import type { CheckResult } from '../upstream/checks.js';
import type { DiskReport } from '../storage/disk-space.js';

export interface ReadinessDeps {
  /** A directory on the store's file system where a probe file may be created (the store's tmp/). */
  readonly probeDir: string;
  readonly metadataOk: () => boolean;
  readonly upstreams: () => UpstreamHealth[];
  /** Free space against the reserve metadata writes need (storage/disk-space). */
  readonly disk?: () => Promise<DiskReport>;
}

/** An upstream's breaker state and its latest start-up checks (reported; never makes berth unready). */
export interface UpstreamHealth {
  readonly name: string;
  readonly state: BreakerState;
  readonly checks?: readonly CheckResult[];
  readonly problems?: readonly string[];
}

export interface Readiness {
  readonly ready: boolean;
  readonly store: { readonly writable: boolean; readonly metadata: boolean; readonly disk?: DiskReport };
  readonly upstreams: UpstreamHealth[];
}

/**
 * Ready when the store's file system accepts a new file, the metadata database answers, and
 * metadata writes have room: the reserve is in place, or as much is free (when neither, eviction
 * was tried first; the report names cause and fix). A dead WAN never makes berth unready: the
 * cache serves from disk.
 */
export async function checkReadiness(deps: ReadinessDeps): Promise<Readiness> {
  const writable = await canCreate(deps.probeDir);
  const metadata = deps.metadataOk();
  const disk = await deps.disk?.();
  const ready = writable && metadata && (disk?.ok ?? true);
  return { ready, store: { writable, metadata, ...(disk ? { disk } : {}) }, upstreams: deps.upstreams() };
}

async function canCreate(dir: string): Promise<boolean> {
  const file = join(dir, `.ready-${randomUUID()}`);
  try {
    const fh = await open(file, 'wx');
    await fh.close();
    await unlink(file);
    return true;
  } catch {
    await unlink(file).catch(() => undefined);
    return false;
  }
}
