/** @module ops/health — readiness: the store takes writes and the metadata answers; upstream state is reported only. */
import { randomUUID } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { BreakerState } from '../upstream/breaker.js';
import type { CheckResult } from '../upstream/checks.js';

export interface ReadinessDeps {
  /** A directory on the store's file system where a probe file may be created (the store's tmp/). */
  readonly probeDir: string;
  readonly metadataOk: () => boolean;
  readonly upstreams: () => UpstreamHealth[];
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
  readonly store: { readonly writable: boolean; readonly metadata: boolean };
  readonly upstreams: UpstreamHealth[];
}

/**
 * Ready when the store's file system accepts a new file and the metadata database answers. The
 * probe file is empty, so a full disk does not make berth unready: it still serves what it has
 * and passes new content through. A dead WAN does not either: the cache serves from disk.
 */
export async function checkReadiness(deps: ReadinessDeps): Promise<Readiness> {
  const writable = await canCreate(deps.probeDir);
  const metadata = deps.metadataOk();
  return { ready: writable && metadata, store: { writable, metadata }, upstreams: deps.upstreams() };
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
