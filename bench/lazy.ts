/** @module bench/lazy — time to the footer of a cold layer (a lazy-pulling client's first read) through a cold cache, against the same straight from the registry, over the same throttled link. */
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
