/** @module bench/lazy — time to the footer of a cold layer (a lazy-pulling client's first read) through a cold cache, against the same straight from the registry, over the same throttled link; and the link bytes of a lazy start followed by the whole layer. */
import { run } from '../test/fixtures/proc.js';
import { type CacheKind, startCache } from './caches.js';
import { startLink } from './link.js';
import type { Ctx } from './scenarios.js';

/** What eStargz's footer read asks for, about: the last 64 KiB of the layer. */
const FOOTER_BYTES = 65_536;

export interface FooterResult {
  kind: CacheKind | 'direct';
  /** From the request to the footer's last byte, as curl measures it. */
  ms: number;
  status: number;
  bytes: number;
  /** Bytes that had crossed the link when the footer was in. */
  linkBytes: number;
}

/** One footer GET (Range: bytes=-65536) by curl; `kind` 'direct' asks the registry over the link itself. */
export async function footer(ctx: Ctx, kind: CacheKind | 'direct'): Promise<FooterResult> {
  const layer = ctx.image.layers[ctx.image.layers.length - 1]!;
  const link = await startLink(ctx.registry.port, ctx.cfg.rateBps);
  const stopLink = ctx.cleanup.add('relay', () => link.stop());
  try {
    const cache = kind === 'direct' ? undefined : await startCache(kind, link.url);
    const stopCache = cache ? ctx.cleanup.add(`${kind} (footer)`, () => cache.stop(ctx.cfg.keepDirs)) : undefined;
    try {
      const url = `${cache?.url ?? link.url}/v2/${ctx.repository}/blobs/${layer.digest}`;
      const args = [
        '-s',
        '-o',
        '/dev/null',
        '--max-time',
        '120',
        '-w',
        '%{http_code} %{size_download} %{time_total}',
        '-H',
        `Range: bytes=-${FOOTER_BYTES}`,
        url,
      ];
      const { stdout } = await run('curl', args, { timeoutMs: 130_000 });
      const [status, bytes, seconds] = stdout.trim().split(' ').map(Number) as [number, number, number];
      // A cache that answers a cold range with the whole layer (distribution does) is timed to its last byte.
      if (!(status === 206 && bytes === FOOTER_BYTES) && status !== 200) throw new Error(`footer answered ${status} with ${bytes} bytes`);
      return { kind, ms: seconds * 1000, status, bytes, linkBytes: link.bytesToClient() };
    } finally {
      await stopCache?.();
    }
  } finally {
    await stopLink();
  }
}

/** The footer table: each cache against the direct read. */
export function footerTable(results: readonly FooterResult[], layerSize: number): string {
  const direct = results.find((r) => r.kind === 'direct');
  const rows = results.map((r) => {
    const vs = direct && r !== direct ? `${(r.ms / direct.ms).toFixed(1)} x direct, +${(r.ms - direct.ms).toFixed(0)} ms` : '';
    const whole = r.status === 200 ? `, answered 200 with ${(r.bytes / (1 << 20)).toFixed(1)} MiB` : '';
    return `  ${r.kind.padEnd(14)} ${`${r.ms.toFixed(0)} ms`.padStart(9)}  ${vs.padEnd(28)} link ${(r.linkBytes / 1024).toFixed(0)} KiB by then${whole}`;
  });
  return `time to the footer (last ${FOOTER_BYTES / 1024} KiB) of a cold ${(layerSize / (1 << 20)).toFixed(1)} MiB layer:\n${rows.join('\n')}\n`;
}

export interface LazyWholeResult {
  kind: CacheKind;
  /** From the footer request to the whole layer's last byte. */
  ms: number;
  layerBytes: number;
  /** Bytes that crossed the link for the footer, the ranges and the whole layer together. */
  linkBytes: number;
}

/** Where a lazy start reads 1 MiB chunks, as fractions of the layer: ahead of where a fill would be. */
const LAZY_CHUNKS = [0.5, 0.7, 0.9];

/**
 * A lazy start (the footer, then three 1 MiB chunks at once) through a cold cache, then the
 * whole layer, as a node that starts lazily and is then pulled in full: what crossed the link,
 * over the layer's size (a cache that keeps its ranges: about 1).
 */
export async function lazyThenWhole(ctx: Ctx, kind: CacheKind): Promise<LazyWholeResult> {
  const layer = ctx.image.layers[ctx.image.layers.length - 1]!;
  const link = await startLink(ctx.registry.port, ctx.cfg.rateBps);
  const stopLink = ctx.cleanup.add('relay', () => link.stop());
  try {
    const cache = await startCache(kind, link.url);
    const stopCache = ctx.cleanup.add(`${kind} (lazy then whole)`, () => cache.stop(ctx.cfg.keepDirs));
    try {
      const url = `${cache.url}/v2/${ctx.repository}/blobs/${layer.digest}`;
      const get = (range?: string) =>
        run('curl', ['-sSf', '-o', '/dev/null', '--max-time', '300', ...(range ? ['-H', `Range: bytes=${range}`] : []), url], { timeoutMs: 310_000 });
      const started = Date.now();
      await get(`-${FOOTER_BYTES}`);
      await Promise.all(
        LAZY_CHUNKS.map((f) => {
          const at = Math.floor(layer.size * f);
          return get(`${at}-${Math.min(layer.size, at + (1 << 20)) - 1}`);
        }),
      );
      await get();
      return { kind, ms: Date.now() - started, layerBytes: layer.size, linkBytes: link.bytesToClient() };
    } finally {
      await stopCache();
    }
  } finally {
    await stopLink();
  }
}

/** The lazy-then-whole table: link bytes over the layer, and the time. */
export function lazyWholeTable(results: readonly LazyWholeResult[]): string {
  const rows = results.map(
    (r) => `  ${r.kind.padEnd(14)} ${`${(r.linkBytes / r.layerBytes).toFixed(3)} x the layer over the link`.padEnd(34)} ${(r.ms / 1000).toFixed(1)} s`,
  );
  const size = results[0] ? ` of a cold ${(results[0].layerBytes / (1 << 20)).toFixed(1)} MiB layer` : '';
  return `a lazy start (footer, then 3 x 1 MiB at once) then the whole layer${size}:\n${rows.join('\n')}\n`;
}
