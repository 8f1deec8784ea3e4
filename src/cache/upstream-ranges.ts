/** @module cache/upstream-ranges — a cold blob's bytes asked of the upstream by Range (or of the site's replica that fetches them): the size before a range-started fill, each range counted as WAN bytes and kept for the fill, overlapping ones fetched once (docs/lazy-pulling.md). */
import type { Logger } from 'pino';
import type { FillRouter } from '../ports/fills.js';
import type { RepositoryLinks } from '../ports/repository-index.js';
import type { KeptRanges } from '../storage/kept-ranges.js';
import { getBlobRange, headBlob } from '../upstream/registry-api.js';
import type { Target } from '../upstream/target.js';
import { NO_CACHE_OBSERVER, counted, type CacheObserver } from './cache-observer.js';
import type { BlobFill } from './fill.js';
import type { RangePacer } from './fill-pacing.js';
import { RangeFlights } from './range-flights.js';
import { reported, sharedFetch } from './shared-ranges.js';
import type { FetchRange } from './lazy-range.js';

export interface UpstreamRangesDeps {
  readonly repos: RepositoryLinks;
  readonly logger: Logger;
  readonly observer?: CacheObserver;
  /** Told of each range fetch under way, so range-started fills of that upstream wait (cache/fill-pacing). */
  readonly pacer: RangePacer;
  /** The site's replicas, when there are others: a range is asked of the one elected for its digest first. */
  readonly router?: FillRouter;
}

export class UpstreamRanges {
  /** Upstream range fetches in progress: overlapping ranges of a cold blob cost one fetch. */
  readonly flights: RangeFlights;

  constructor(private readonly deps: UpstreamRangesDeps) {
    // With workers, the host's table claims each span for every request at once (cache/shared-ranges).
    this.flights = new RangeFlights(deps.router?.ranges === undefined);
  }

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

  /**
   * How a request's missing bytes of `digest` are had: what `kept` holds by then is read from it
   * (another request's fetch may have ended while this one waited for an earlier part); the rest
   * is fetched once per host when workers share the work (cache/shared-ranges), and once per site
   * through the replica elected for the digest when `site` (see fetch).
   */
  fetcher(target: Target, digest: string, kept: KeptRanges | undefined, site: boolean): FetchRange {
    const fetch: FetchRange = (a, b) => this.fetch(target, digest, a, b, kept, site);
    const shared = this.deps.router?.ranges;
    const upstream: FetchRange = shared && kept ? (a, b) => sharedFetch(shared, digest, a, b, kept, fetch) : fetch;
    const held = (a: number, b: number) => kept?.discarded === false && (kept.presentEnd(a) ?? -1) > b;
    return async (a, b) => {
      // Another worker of the host may have kept them since this process last read the map.
      if (shared && kept && !held(a, b)) await kept.reload().catch(() => undefined);
      return held(a, b) ? kept!.read(a, b + 1) : upstream(a, b);
    };
  }

  /**
   * Bytes [start, end] of a cold blob, kept in `kept`; undefined when the upstream ignores ranges.
   * `site`: asked first of the replica of the site elected for the digest (it fetches them once
   * for every replica); what it does not send, the upstream is asked for here.
   */
  async fetch(
    target: Target,
    digest: string,
    start: number,
    end: number,
    kept: KeptRanges | undefined,
    site = false,
  ): Promise<AsyncIterable<Uint8Array> | undefined> {
    const { client } = target.upstream!;
    // Range-started fills of this upstream read no further until this range is in (cache/fill-pacing).
    const done = this.deps.pacer.begin(client.name);
    let body: AsyncIterable<Uint8Array> | undefined;
    try {
      const peer = site ? await this.deps.router?.range?.({ target, digest, start, end }).catch(() => undefined) : undefined;
      body = peer ? this.resumed(peer, target, digest, start, end) : await this.upstream(target, digest, start, end);
    } catch (err) {
      done();
      throw err;
    }
    if (!body) {
      done();
      return undefined;
    }
    const bytes = reported(body, done);
    if (!kept) return bytes;
    return kept.keep(bytes, start, end, (err) =>
      this.deps.logger.warn({ upstream: client.name, digest, start, err: err.message }, 'could not keep a range for the fill; it will be fetched again'),
    );
  }

  /** Bytes [start, end] straight from the upstream (a Range request), counted as WAN bytes; undefined when it ignores ranges. */
  private async upstream(target: Target, digest: string, start: number, end: number): Promise<AsyncIterable<Uint8Array> | undefined> {
    const { client } = target.upstream!;
    const body = await getBlobRange(client, target.repository, digest, start, end);
    if (!body) {
      this.deps.logger.info({ upstream: client.name, digest, start, end }, 'upstream did not answer a range; serving it from the fill');
      return undefined;
    }
    const observer = this.deps.observer ?? NO_CACHE_OBSERVER;
    return counted(body, (n) => observer.upstreamBytes(client.name, n));
  }

  /** A peer replica's bytes of [start, end]; when it stops short (it went away), the rest from the upstream. */
  private async *resumed(peer: AsyncIterable<Uint8Array>, target: Target, digest: string, start: number, end: number): AsyncGenerator<Uint8Array> {
    let pos = start;
    try {
      for await (const chunk of peer) {
        pos += chunk.length;
        yield chunk;
      }
    } catch (err) {
      this.deps.logger.warn({ digest, at: pos, end, err: (err as Error).message }, 'a peer replica stopped sending a range; fetching the rest upstream');
    }
    if (pos > end) return;
    const rest = await this.upstream(target, digest, pos, end);
    if (!rest) throw new Error(`the upstream stopped answering ranges (bytes ${pos}-${end} of ${digest})`);
    yield* rest;
  }
}
