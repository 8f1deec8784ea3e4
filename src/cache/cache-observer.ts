/** @module cache/cache-observer — callbacks through which the cache reports what it moves (metrics hook in here). */

export interface CacheObserver {
  /** Manifest and blob bytes received from an upstream, as they arrive (resumed and failed transfers included). */
  upstreamBytes(upstream: string, bytes: number): void;
  /** Content removed from the store: `ttl`, `size` (LRU) or `admin` (an evict request). */
  evicted(reason: string, count: number, bytes: number): void;
  /** A manifest checked against the verify: policy: `valid`, `denied` (enforce) or `warned` (served in warn mode). */
  signatureChecked?(result: 'valid' | 'denied' | 'warned'): void;
}

export const NO_CACHE_OBSERVER: CacheObserver = Object.freeze({
  upstreamBytes: () => undefined,
  evicted: () => undefined,
});

/** Passes a body through, reporting the size of each chunk. */
export async function* counted(body: AsyncIterable<Uint8Array>, add: (bytes: number) => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    add(chunk.length);
    yield chunk;
  }
}
