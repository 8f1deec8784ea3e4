/** @module cache/upstream-ranges — a cold blob's bytes asked of the upstream by Range: the size before a range-started fill, each range counted as WAN bytes and kept for the fill, overlapping ones fetched once (docs/lazy-pulling.md). */
import type { Logger } from 'pino';
import type { RepositoryLinks } from '../ports/repository-index.js';
import type { KeptRanges } from '../storage/kept-ranges.js';
import { getBlobRange, headBlob } from '../upstream/registry-api.js';
import type { Target } from '../upstream/target.js';
import { NO_CACHE_OBSERVER, counted, type CacheObserver } from './cache-observer.js';
import type { BlobFill } from './fill.js';
import type { RangePacer } from './fill-pacing.js';
import { RangeFlights } from './range-flights.js';
import { reported } from './shared-ranges.js';

export interface UpstreamRangesDeps {
  readonly repos: RepositoryLinks;
  readonly logger: Logger;
  readonly observer?: CacheObserver;
  /** Told of each range fetch under way, so range-started fills of that upstream wait (cache/fill-pacing). */
  readonly pacer: RangePacer;
}

export class UpstreamRanges {
  /** Upstream range fetches in progress: overlapping ranges of a cold blob cost one fetch. */
  readonly flights = new RangeFlights();

  constructor(private readonly deps: UpstreamRangesDeps) {}

  /**
   * The size of a blob whose fill is held back for a client's ranges, from an upstream HEAD (which
   * also shows the repository may read it). Without it, the fill starts now and tells the size.
   */
  async sizeFirst(target: Target, fill: BlobFill): Promise<void> {
    const head = await headBlob(target.upstream!.client, target.repository, fill.digest).catch(() => undefined);
    if (head?.size === undefined) return fill.release();
    fill.markReady(head.size);
    // The repository may read the blob: its next ranges need not ask the upstream again (ensureVisible).
    await this.deps.repos.link(target.key, target.repository, fill.digest).catch(() => undefined);
  }

  /** Bytes [start, end] straight from the upstream (a Range request), counted as WAN bytes; undefined when it ignores ranges. */
  async fetch(target: Target, digest: string, start: number, end: number, kept: KeptRanges | undefined): Promise<AsyncIterable<Uint8Array> | undefined> {
    const { client } = target.upstream!;
    // Range-started fills of this upstream read no further until this range is in (cache/fill-pacing).
    const done = this.deps.pacer.begin(client.name);
    const body = await getBlobRange(client, target.repository, digest, start, end).catch((err: unknown) => {
      done();
      throw err;
    });
    if (!body) {
      done();
      this.deps.logger.info({ upstream: client.name, digest, start, end }, 'upstream did not answer a range; serving it from the fill');
      return undefined;
    }
    const observer = this.deps.observer ?? NO_CACHE_OBSERVER;
    const bytes = reported(
      counted(body, (n) => observer.upstreamBytes(client.name, n)),
      done,
    );
    if (!kept) return bytes;
    return kept.keep(bytes, start, end, (err) =>
      this.deps.logger.warn({ upstream: client.name, digest, start, err: err.message }, 'could not keep a range for the fill; it will be fetched again'),
    );
  }
}
