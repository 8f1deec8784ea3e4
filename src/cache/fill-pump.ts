/** @module cache/fill-pump — drives one fill: upstream attempts resumed from the last byte written, then verify and commit. */
import type { BlobWriter } from '../storage/blob-files.js';
import type { BlobFill } from './fill.js';

export interface RetryPolicy {
  /** Upstream attempts in all (the first one included). */
  readonly attempts: number;
  /** No new attempt starts after this long. */
  readonly totalMs: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, totalMs: 10 * 60_000, baseDelayMs: 250, maxDelayMs: 8_000 };

export interface FillSource {
  /** The upstream body from byte `offset` on (a Range request, or a restart that skips ahead). */
  open(offset: number): Promise<AsyncIterable<Uint8Array>>;
  /** Whether an error from open() or the body is worth another attempt. */
  retriable(err: unknown): boolean;
}

export interface PumpHooks {
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  onRetry?(attempt: number, err: Error): void;
  onDiskFull?: (err: Error) => Promise<void>;
}

/**
 * Pumps upstream bytes into the writer, resuming from the last byte written when the connection
 * drops, then verifies and commits. Runs to completion whether or not any reader is attached.
 */
export async function pumpFill(
  fill: BlobFill,
  source: FillSource,
  writer: BlobWriter,
  policy: RetryPolicy,
  hooks: PumpHooks,
): Promise<{ digest: string; size: number; stored: boolean }> {
  const started = hooks.now();
  const onDiskFull = hooks.onDiskFull ?? (async () => undefined);
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const body = await source.open(fill.written);
        for await (const chunk of body) await fill.accept(chunk, writer, onDiskFull);
        if (fill.size !== undefined && fill.written < fill.size) throw new ShortBodyError(fill.written, fill.size);
        break;
      } catch (err) {
        const again = source.retriable(err) && attempt < policy.attempts && hooks.now() - started < policy.totalMs;
        if (!again) throw err;
        hooks.onRetry?.(attempt, err as Error);
        await hooks.sleep(Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1)));
      }
    }
    if (fill.mode !== 'memory') {
      const committed = await writer.commit(fill.digest, fill.size);
      fill.succeed(true);
      return { ...committed, stored: true };
    }
    const verified = writer.verify(fill.digest, fill.size);
    await writer.abort();
    fill.succeed(false);
    return { ...verified, stored: false };
  } catch (err) {
    await writer.abort().catch(() => undefined);
    fill.fail(err as Error);
    throw err;
  }
}

/** The upstream closed the body before the size it announced. */
export class ShortBodyError extends Error {
  /** Worth resuming from where it stopped (see oci/errors isTransient). */
  readonly transient = true;
  constructor(received: number, expected: number) {
    super(`upstream body ended after ${received} of ${expected} bytes`);
    this.name = 'ShortBodyError';
  }
}
