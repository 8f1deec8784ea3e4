/** @module bench/pulls — N nodes pulling at once, each a separate curl process, failures counted rather than thrown */
import type { BuiltImage } from '../test/fixtures/image.js';
import { normalize } from './caches.js';
import { type Endpoint, nodePull } from './curl.js';

export interface PullTarget extends Endpoint {
  repository: string;
  reference: string;
  image: BuiltImage;
}

export interface BatchResult {
  clients: number;
  ok: number;
  failed: number;
  /** Failures that were the deadline rather than an error response. */
  timedOut: number;
  /** Blob and manifest bytes received by pulls that completed. */
  bytes: number;
  /** From the start of the batch until the last pull settled (or the deadline). */
  wallMs: number;
  /** Slowest successful pull. */
  slowestMs: number;
  /** Distinct failure messages (digests and ports collapsed) with their counts. */
  errors: Record<string, number>;
}

async function onePull(t: PullTarget, timeoutMs: number, into: BatchResult): Promise<void> {
  const start = Date.now();
  const r = await nodePull(t, t.repository, t.reference, t.image, Math.ceil(timeoutMs / 1000));
  if (r.failed === 0) {
    into.ok++;
    into.bytes += r.bytes;
    into.slowestMs = Math.max(into.slowestMs, Date.now() - start);
    return;
  }
  into.failed++;
  if (Date.now() - start >= timeoutMs) into.timedOut++;
  const key = normalize(r.errors.join('; ') || 'failed');
  into.errors[key] = (into.errors[key] ?? 0) + 1;
}

/**
 * n node pulls started together; resolves when all have succeeded, failed or hit timeoutMs (curl's
 * --max-time). With several targets (the replicas of a site) node i pulls from target i mod count.
 */
export async function pullBatch(t: PullTarget | PullTarget[], n: number, timeoutMs: number): Promise<BatchResult> {
  const targets = Array.isArray(t) ? t : [t];
  const res: BatchResult = { clients: n, ok: 0, failed: 0, timedOut: 0, bytes: 0, wallMs: 0, slowestMs: 0, errors: {} };
  const start = Date.now();
  await Promise.all(Array.from({ length: n }, (_, i) => onePull(targets[i % targets.length]!, timeoutMs, res)));
  res.wallMs = Date.now() - start;
  return res;
}
