/** @module bench/lazy-start — an eStargz-like lazy start (footer, table of contents, scattered chunks) and 8 parallel ranges covering a layer, through a cold cache against straight from the registry, over the same throttled link: time to first byte, time, bytes over the link. */
import { run } from '../test/fixtures/proc.js';
import type { BlobInfo } from '../test/fixtures/image.js';
import { type CacheKind, startBerthCache, startCache } from './caches.js';
import { startLink } from './link.js';
import type { Ctx } from './scenarios.js';

const KiB = 1024;
/** eStargz's footer, and its table of contents just before it (a few hundred KiB for a large layer). */
const FOOTER_BYTES = 64 * KiB;
const TOC_BYTES = 512 * KiB;
/** The chunks a starting container touches: scattered over the layer, asked for at once (the snapshotter's parallel fetches). */
const CHUNKS = [0.05, 0.3, 0.55, 0.8];
const CHUNK_BYTES = 256 * KiB;
/** containerd 2.x's split of a layer into concurrent ranges. */
const PARALLEL = 8;

/** The layer the two scenarios read: one large layer of its own, cold in every cache. */
export interface LazyLayer {
  readonly repository: string;
  readonly layer: BlobInfo;
  /** Another blob of the repository (the image's config), read once by `berth-running` before the layer. */
  readonly other: BlobInfo;
}

export interface LazyStartResult {
  scenario: 'lazystart' | 'parallel';
  kind: LazyKind;
  /** From the first request to its first byte (curl's time_starttransfer). */
  firstByteMs: number;
  /** From the first request to the last range's last byte. */
  ms: number;
  /** Bytes the link had carried towards the cache (or the client, direct) when the last range was in. */
  linkBytes: number;
  /** Bytes the client asked for. */
  askedBytes: number;
  layerBytes: number;
}

/**
 * `berth-budget`: berth with `ratelimit` at the link's rate, so its WAN budget puts the ranges
 * ahead of the fill they start. `berth-running`: berth that has already answered one range (of
 * another blob) since it started, as a site's long-running cache has: the layer is as cold, but
 * the first request no longer pays for compiling and warming up berth's range path.
 */
export type LazyKind = CacheKind | 'direct' | 'berth-budget' | 'berth-running';

interface Timed {
  readonly firstByteMs: number;
  readonly bytes: number;
}

/** One ranged GET by curl, checked for a 206 of exactly the range, or a 200 with the whole layer (distribution's answer to a cold range, timed to its last byte). */
async function ranged(url: string, start: number, end: number, size: number): Promise<Timed> {
  const args = [
    '-s',
    '-o',
    '/dev/null',
    '--max-time',
    '300',
    '-w',
    '%{http_code} %{size_download} %{time_starttransfer}',
    '-H',
    `Range: bytes=${start}-${end}`,
    url,
  ];
  const { stdout } = await run('curl', args, { timeoutMs: 310_000 });
  const [status, bytes, firstByte] = stdout.trim().split(' ').map(Number) as [number, number, number];
  if (!(status === 206 && bytes === end - start + 1) && !(status === 200 && bytes === size))
    throw new Error(`bytes ${start}-${end} answered ${status} with ${bytes} bytes`);
  return { firstByteMs: firstByte * 1000, bytes };
}

/** The spans each scenario asks for, in rounds: the requests of one round go at once, the rounds one after another. */
function plan(scenario: LazyStartResult['scenario'], size: number): Array<Array<[number, number]>> {
  if (scenario === 'parallel') {
    const part = Math.ceil(size / PARALLEL);
    return [Array.from({ length: PARALLEL }, (_, i) => [i * part, Math.min(size, (i + 1) * part) - 1] as [number, number])];
  }
  const tocEnd = size - FOOTER_BYTES;
  return [
    [[size - FOOTER_BYTES, size - 1]],
    [[tocEnd - TOC_BYTES, tocEnd - 1]],
    CHUNKS.map((f) => {
      const at = Math.floor(size * f);
      return [at, at + CHUNK_BYTES - 1] as [number, number];
    }),
  ];
}

/** One scenario through a cold cache (`kind`), or straight from the registry over the link ('direct'). */
export async function lazyStart(ctx: Ctx, target: LazyLayer, scenario: LazyStartResult['scenario'], kind: LazyKind): Promise<LazyStartResult> {
  const { layer } = target;
  const link = await startLink(ctx.registry.port, ctx.cfg.rateBps);
  const stopLink = ctx.cleanup.add('relay', () => link.stop());
  try {
    const cache =
      kind === 'direct'
        ? undefined
        : kind === 'berth-budget'
          ? await startBerthCache(link.url, { proxy: { ratelimit: `${Math.floor(ctx.cfg.rateBps / 1000)}KB/s` } })
          : await startCache(kind === 'berth-running' ? 'berth' : kind, link.url);
    const stopCache = cache ? ctx.cleanup.add(`${kind} (${scenario})`, () => cache.stop(ctx.cfg.keepDirs)) : undefined;
    try {
      const url = `${cache?.url ?? link.url}/v2/${target.repository}/blobs/${layer.digest}`;
      if (kind === 'berth-running') {
        await ranged(`${cache!.url}/v2/${target.repository}/blobs/${target.other.digest}`, 0, 0, target.other.size);
        // Past start-up's one-off work (reconciliation, a full collection, the code cache written 2 s after listening).
        await new Promise((r) => setTimeout(r, 3_000));
      }
      const linkBefore = link.bytesToClient();
      const started = Date.now();
      let firstByteMs: number | undefined;
      let askedBytes = 0;
      for (const round of plan(scenario, layer.size)) {
        const roundStart = Date.now() - started;
        const answers = await Promise.all(round.map(([s, e]) => ranged(url, s, e, layer.size)));
        firstByteMs ??= roundStart + Math.min(...answers.map((a) => a.firstByteMs));
        askedBytes += round.reduce((n, [s, e]) => n + e - s + 1, 0);
      }
      const ms = Date.now() - started;
      return { scenario, kind, firstByteMs: firstByteMs ?? ms, ms, linkBytes: link.bytesToClient() - linkBefore, askedBytes, layerBytes: layer.size };
    } finally {
      await stopCache?.();
    }
  } finally {
    await stopLink();
  }
}

/** The table of one scenario: each cache against the direct read. */
export function lazyStartTable(results: readonly LazyStartResult[], scenario: LazyStartResult['scenario']): string {
  const mine = results.filter((r) => r.scenario === scenario);
  if (mine.length === 0) return '';
  const direct = mine.find((r) => r.kind === 'direct');
  const MiB = 1 << 20;
  const rows = mine.map((r) => {
    const vs = direct && r !== direct ? `${(r.ms / direct.ms).toFixed(2)} x direct` : '';
    return `  ${r.kind.padEnd(14)} first byte ${`${r.firstByteMs.toFixed(0)} ms`.padStart(8)}  all ${`${r.ms.toFixed(0)} ms`.padStart(8)} ${vs.padEnd(16)} link ${(r.linkBytes / MiB).toFixed(2)} MiB (${(r.linkBytes / r.askedBytes).toFixed(2)} x asked)`;
  });
  const first = mine[0]!;
  const what =
    scenario === 'lazystart'
      ? `an eStargz-like lazy start (footer, ${TOC_BYTES / KiB} KiB table of contents, then ${CHUNKS.length} x ${CHUNK_BYTES / KiB} KiB at once)`
      : `${PARALLEL} parallel ranges covering`;
  return `${what}${scenario === 'parallel' ? '' : ' of'} a cold ${(first.layerBytes / MiB).toFixed(1)} MiB layer, ${(first.askedBytes / MiB).toFixed(2)} MiB asked:\n${rows.join('\n')}\n`;
}
