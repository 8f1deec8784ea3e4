/** @module bench/upstream — what the central registry sent, read from its own log, and waiting for that to stop growing */
import type { Registry } from '../test/fixtures/registry.js';
import { sleep } from '../test/fixtures/proc.js';

export interface UpstreamSnapshot {
  /** Body bytes sent (HEAD excluded), as registry.bytesSent() counts them. */
  bytes: number;
  blobGets: number;
  blobBytes: number;
  manifestRequests: number;
  requests: number;
  /** Responses with status >= 400. */
  errors: number;
}

export async function snapshot(registry: Registry): Promise<UpstreamSnapshot> {
  const reqs = await registry.requests();
  const s: UpstreamSnapshot = { bytes: 0, blobGets: 0, blobBytes: 0, manifestRequests: 0, requests: reqs.length, errors: 0 };
  for (const r of reqs) {
    if (r.method !== 'HEAD') s.bytes += r.written;
    if (r.status >= 400) s.errors++;
    if (r.uri.includes('/blobs/') && r.method === 'GET') {
      s.blobGets++;
      s.blobBytes += r.written;
    }
    if (r.uri.includes('/manifests/')) s.manifestRequests++;
  }
  return s;
}

export function diff(after: UpstreamSnapshot, before: UpstreamSnapshot): UpstreamSnapshot {
  const out = { ...after };
  for (const k of Object.keys(out) as Array<keyof UpstreamSnapshot>) out[k] = after[k] - before[k];
  return out;
}

/**
 * distribution stores a proxied blob with a second, background fetch that can outlive the
 * client's pull, and the registry logs a request only when it completes; so wait until the
 * count stops moving (bounded) before calling a measurement done.
 */
export async function settle(
  registry: Registry,
  opts: { quietMs?: number; maxMs?: number; live?: () => number } = {},
): Promise<{ settled: boolean; waitedMs: number }> {
  const { quietMs = 1_500, maxMs = 30_000, live = () => 0 } = opts;
  const start = Date.now();
  let last = await snapshot(registry);
  let lastLive = live();
  let stableSince = Date.now();
  while (Date.now() - start < maxMs) {
    await sleep(250);
    const now = await snapshot(registry);
    // `live` (e.g. relay bytes) also sees transfers still running, which the log cannot.
    if (now.requests !== last.requests || now.bytes !== last.bytes || live() !== lastLive) {
      last = now;
      lastLive = live();
      stableSince = Date.now();
    } else if (Date.now() - stableSince >= quietMs) {
      return { settled: true, waitedMs: Date.now() - start };
    }
  }
  return { settled: false, waitedMs: Date.now() - start };
}
