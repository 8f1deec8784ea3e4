/** @module soak/finish — the checks after the traffic: the write-behind queue drained, the registry holds every push, fsck finds the store intact. */
import { spawnSync } from 'node:child_process';
import { request } from 'undici';
import { BERTH_BIN, type Berth } from '../test/fixtures/berth.js';
import { sleep } from '../test/fixtures/proc.js';
import type { Registry, RegistryRequest } from '../test/fixtures/registry.js';
import { refKey, type SoakImage } from './traffic.js';

/**
 * After the upstream went away: waits (up to `waitMs`) for berth to call it down, then reads from
 * its admin API which images it holds completely (every blob recorded), as references.
 */
export async function cachedWhenDown(berthUrl: string, images: readonly SoakImage[], waitMs: number): Promise<Set<string>> {
  const until = Date.now() + waitMs;
  const json = async (path: string): Promise<unknown> => (await request(`${berthUrl}${path}`)).body.json();
  for (;;) {
    const ups = (await json('/api/v1/upstreams').catch(() => [])) as Array<{ name: string; state: string }>;
    if (ups.some((u) => u.name === 'central' && u.state === 'down')) break;
    if (Date.now() > until) return new Set();
    await sleep(250);
  }
  // A pass planned just before the breaker opened may still be deleting: let it finish.
  await sleep(1_000);
  const sizes = new Map(images.map((i) => [i.digest, i.bytes]));
  const rows = (await json('/api/v1/images?limit=10000')) as Array<{ upstream: string; repository: string; tag: string | null; digest: string; size: number }>;
  const out = new Set<string>();
  for (const r of rows) {
    if (r.upstream !== 'central' || sizes.get(r.digest) !== r.size) continue;
    out.add(refKey(r.repository, r.digest));
    if (r.tag) out.add(refKey(r.repository, r.tag));
  }
  return out;
}

/** Waits until `berth queue` lists nothing; false when jobs are still queued after `timeoutMs`. */
export async function drainQueue(berth: Pick<Berth, 'configFile'>, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = spawnSync(process.execPath, [BERTH_BIN, 'queue', '--json', '--config', berth.configFile], { encoding: 'utf8' });
    if (r.status === 0 && (JSON.parse(r.stdout) as unknown[]).length === 0) return true;
    if (Date.now() > until) return false;
    await sleep(1_000);
  }
}

/** The harness itself talks to the registry only through skopeo (setting up images, moving tags). */
export function fromBerth(r: RegistryRequest): boolean {
  return !r.userAgent.startsWith('skopeo/');
}

/** `repository@digest` of every manifest the registry accepted (201) from berth, read from its own log. */
export async function replicatedManifests(registry: Registry): Promise<Set<string>> {
  const out = new Set<string>();
  for (const r of await registry.requests()) {
    if (r.method !== 'PUT' || r.status !== 201 || !fromBerth(r)) continue;
    const m = /^\/v2\/(.+)\/manifests\/(sha256:[0-9a-f]{64})$/.exec(r.uri);
    if (m) out.add(`${m[1]}@${m[2]}`);
  }
  return out;
}

export interface FsckFigures {
  readonly ok: boolean;
  readonly checked: number;
  readonly corrupt: number;
  readonly output: string;
}

/** `berth fsck` on the stopped berth's store. */
export async function fsckStore(configFile: string): Promise<FsckFigures> {
  const r = spawnSync(process.execPath, [BERTH_BIN, 'fsck', '--config', configFile], { encoding: 'utf8' });
  const output = `${r.stdout}${r.stderr}`.trim();
  const m = /checked (\d+) blobs .*: (\d+) corrupt/.exec(output);
  const checked = Number(m?.[1] ?? 0);
  const corrupt = Number(m?.[2] ?? -1);
  return { ok: r.status === 0 && corrupt === 0, checked, corrupt, output };
}
