/** @module bench/pulls — N in-process httpPull clients at once, every pull bounded in time, failures counted rather than thrown */
import { httpPull } from '../test/fixtures/http-pull.js';
import { normalize } from './caches.js';

export interface PullTarget {
  url: string;
  repository: string;
  reference: string;
}

export interface BatchResult {
  clients: number;
  ok: number;
  failed: number;
  /** Failures that were the deadline rather than an error response. */
  timedOut: number;
  /** Verified blob bytes received by pulls that completed. */
  bytes: number;
  /** From the start of the batch until the last pull settled (or the deadline). */
  wallMs: number;
  /** Slowest successful pull. */
  slowestMs: number;
  /** Distinct failure messages (digests and ports collapsed) with their counts. */
  errors: Record<string, number>;
}

class Timeout extends Error {}

/** Rejects after ms; the loser keeps running until its cache is stopped, which ends its sockets. */
function deadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout(`no result within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function emptyResult(clients: number): BatchResult {
  return { clients, ok: 0, failed: 0, timedOut: 0, bytes: 0, wallMs: 0, slowestMs: 0, errors: {} };
}

async function onePull(t: PullTarget, timeoutMs: number, into: BatchResult): Promise<void> {
  const start = Date.now();
  try {
    const r = await deadline(httpPull(t.url, t.repository, t.reference), timeoutMs);
    into.ok++;
    into.bytes += r.blobBytes;
    into.slowestMs = Math.max(into.slowestMs, Date.now() - start);
  } catch (e) {
    into.failed++;
    if (e instanceof Timeout) into.timedOut++;
    const key = normalize(e instanceof Error ? e.message : String(e));
    into.errors[key] = (into.errors[key] ?? 0) + 1;
  }
}

/** n pulls started together; resolves when all have succeeded, failed or hit timeoutMs. */
export async function pullBatch(t: PullTarget, n: number, timeoutMs: number): Promise<BatchResult> {
  const res = emptyResult(n);
  const start = Date.now();
  await Promise.all(Array.from({ length: n }, () => onePull(t, timeoutMs, res)));
  res.wallMs = Date.now() - start;
  return res;
}

/**
 * `clients` loops, each pulling the whole image again until `seconds` have passed; a pull
 * started before the end runs to completion, so bytes / wallMs is an honest rate.
 */
export async function pullFor(t: PullTarget, clients: number, seconds: number, perPullTimeoutMs: number): Promise<BatchResult> {
  const res = emptyResult(clients);
  const start = Date.now();
  const end = start + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (Date.now() < end) {
      const failedBefore = res.failed;
      await onePull(t, perPullTimeoutMs, res);
      // A cache refusing instantly would spin this loop; back off a little after a failure.
      if (res.failed > failedBefore) await new Promise((r) => setTimeout(r, 50));
    }
  }));
  res.wallMs = Date.now() - start;
  return res;
}
