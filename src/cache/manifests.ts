/** @module cache/manifests — pull-through policy for manifests: tag freshness, verification, single-flight fetches. */
import type { Logger } from 'pino';
import { digestOf, parseDigest } from '../oci/digest.js';
import { OciError, isTransient, manifestTooLarge } from '../oci/errors.js';
import { badGateway, manifestUnknown } from '../oci/error-catalogue.js';
import { MAX_MANIFEST_SIZE, parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { manifestRow } from './referrers.js';
import type { ManifestReference } from '../oci/reference.js';
import { isNotFound, type BlobStore } from '../storage/blob-files.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { HeldTags } from '../ports/held-tags.js';
import type { ManifestRecords, TagIndex } from '../ports/repository-index.js';
import { responseHeader, type UpstreamResponse } from '../upstream/client.js';
import { getManifest } from '../upstream/registry-api.js';
import type { Outcome } from '../ports/request-observer.js';
import type { Target } from '../upstream/target.js';
import type { ManifestSite } from '../ports/manifest-site.js';
import { NO_CACHE_OBSERVER, type CacheObserver } from './cache-observer.js';
import { PromiseFlight } from '../util/single-flight.js';

/** How long a tag request waits on upstream revalidation before it is answered from the cache. */
export const REVALIDATION_WAIT_MS = 3_000;

export interface ManifestResult {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Buffer;
  readonly outcome: Outcome;
}

export interface ManifestCacheDeps {
  readonly blobs: BlobStore;
  readonly index: BlobIndex;
  readonly repos: ManifestRecords & TagIndex;
  readonly logger: Logger;
  readonly now: () => number;
  readonly heldTags?: HeldTags;
  readonly observer?: CacheObserver;
  /** The site's shared tag records and its replicas' manifests (`cluster:`): one upstream check per tag per site. */
  readonly site?: ManifestSite;
  /** Called with every manifest just fetched and stored from upstream (blob prefetch hangs here). */
  readonly onFetched?: (target: Target, manifest: ParsedManifest) => void;
}

/** How long a replica waits for another replica's tag check before checking itself. */
const SITE_CHECK_WAIT_MS = 2_000;

export class ManifestCache {
  /** Upstream fetches in progress keyed by upstream, repository and reference: the single-flight table. */
  private readonly pending: PromiseFlight<ManifestResult>;

  constructor(private readonly deps: ManifestCacheDeps) {
    this.pending = new PromiseFlight(deps.now);
  }

  async get(target: Target, ref: ManifestReference): Promise<ManifestResult> {
    if (ref.kind === 'digest') return this.byDigest(target, ref.digest);
    return this.byTag(target, ref.tag);
  }

  private async byDigest(target: Target, digest: string): Promise<ManifestResult> {
    parseDigest(digest);
    const local = (await this.local(target, digest, target.upstream ? 'hit' : 'local')) ?? (await this.fromPeerQuietly(target, digest));
    if (local) return local;
    if (!target.upstream) throw manifestUnknown(target.repository, digest);
    return this.singleFlight(target, digest, () => this.fetch(target, digest));
  }

  private async byTag(target: Target, tag: string): Promise<ManifestResult> {
    const { repos, now, logger } = this.deps;
    const record = await repos.tag(target.key, target.repository, tag);
    const upstream = target.upstream;
    // A held tag (pushed here, or at another replica of the site) points at the newest push of it.
    const held = upstream ? await this.deps.heldTags?.heldDigest(target.key, target.repository, tag) : undefined;
    if (!upstream || held !== undefined) {
      const digest = held ?? record?.digest;
      const local = digest && ((await this.local(target, digest, 'local')) ?? (await this.fromPeerQuietly(target, digest)));
      if (!local) throw manifestUnknown(target.repository, tag);
      return local;
    }
    if (record && now() - record.checkedAt < upstream.config.tagttlMs) {
      const local = await this.local(target, record.digest, 'hit');
      if (local) return local;
    }
    const checked = this.singleFlight(target, tag, async () => {
      try {
        // With the upstream known down nobody's check can succeed: waiting for another worker's
        // (whose failed check may still hold the claim) would only delay the 503 or the stale answer.
        const shared = upstream.client.breaker.state === 'down' ? undefined : await this.fromSite(target, tag, upstream.config.tagttlMs);
        if (shared) return shared;
        const result = await this.revalidate(target, tag, record?.digest);
        await this.deps.site?.publish(target, tag, result.digest, now()).catch(() => undefined);
        return result;
      } catch (err) {
        const stale = record && isUnavailable(err) ? await this.local(target, record.digest, 'stale') : undefined;
        if (!stale) throw err;
        // Per-request detail only: the circuit breaker logs each outage once.
        logger.debug(
          { upstream: upstream.client.name, repository: target.repository, tag, digest: record!.digest, err: (err as Error).message },
          'upstream unavailable; serving last known digest for tag',
        );
        return stale;
      }
    });
    if (!record) return checked;
    // A hung link must not hold up a tag berth can already answer: after a short wait the last
    // known digest is served while the check goes on (and updates the record when it ends).
    checked.catch(() => undefined);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const wait = this.remainingWait(target, tag);
    const waited = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), wait);
    });
    try {
      const result = await Promise.race([checked, waited]);
      if (result) return result;
    } finally {
      clearTimeout(timer);
    }
    const stale = await this.local(target, record.digest, 'stale');
    return stale ?? checked;
  }

  /**
   * The site's answer for a tag, when another replica checked it within the tag TTL (or is
   * checking it now): its manifest from here or from a replica holding it, verified here.
   * Undefined: this replica asks the upstream itself.
   */
  private async fromSite(target: Target, tag: string, ttlMs: number): Promise<ManifestResult | undefined> {
    const { site, now, repos, logger } = this.deps;
    if (!site) return undefined;
    try {
      const deadline = now() + SITE_CHECK_WAIT_MS;
      for (let first = true; ; first = false) {
        const rec = await site.tag(target, tag);
        if (rec && now() - rec.checkedAt < ttlMs) {
          const local = (await this.local(target, rec.digest, 'hit')) ?? (await this.fromPeer(target, rec.digest));
          if (local) {
            await repos.setTag(target.key, target.repository, tag, rec.digest);
            return local;
          }
          return undefined;
        }
        if (first && (await site.claimCheck(target, tag))) return undefined;
        if (now() > deadline) return undefined;
        await new Promise((r) => setTimeout(r, 100));
      }
    } catch (err) {
      logger.debug({ repository: target.repository, tag, err: (err as Error).message }, 'site tag record unavailable; checking upstream');
      return undefined;
    }
  }

  private async fromPeer(target: Target, digest: string): Promise<ManifestResult | undefined> {
    const body = await this.deps.site!.fetch(target, digest);
    if (!body || digestOf(body, parseDigest(digest).algorithm) !== digest) return undefined;
    const parsed = parseManifest(body);
    await this.store(target, digest, body, parsed);
    return { digest, mediaType: parsed.mediaType, body, outcome: 'hit' };
  }

  /** A manifest another replica of the site holds (a push it took), or undefined: never an error. */
  private async fromPeerQuietly(target: Target, digest: string): Promise<ManifestResult | undefined> {
    if (!this.deps.site) return undefined;
    try {
      return await this.fromPeer(target, digest);
    } catch (err) {
      this.deps.logger.debug({ repository: target.repository, digest, err: (err as Error).message }, 'manifest not available from the site');
      return undefined;
    }
  }

  /** One conditional check upstream: a HEAD, and a GET only when the tag moved. */
  private async revalidate(target: Target, tag: string, knownDigest: string | undefined): Promise<ManifestResult> {
    const { client } = target.upstream!;
    const { repos } = this.deps;
    if (knownDigest) {
      const head = await getManifest(client, target.repository, tag, { head: true, known: true });
      if (!head) {
        await repos.deleteTag(target.key, target.repository, tag);
        throw manifestUnknown(target.repository, tag);
      }
      await head.body.dump();
      if (responseHeader(head, 'docker-content-digest') === knownDigest) {
        const local = await this.local(target, knownDigest, 'hit');
        if (local) {
          await repos.touchTag(target.key, target.repository, tag);
          return local;
        }
      }
    }
    const result = await this.fetch(target, tag);
    await repos.setTag(target.key, target.repository, tag, result.digest);
    return result;
  }

  /** GETs a manifest from upstream, verifies it, and stores it under the repository. */
  private async fetch(target: Target, reference: string): Promise<ManifestResult> {
    const { client } = target.upstream!;
    const what = `manifest ${target.repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    const res = await getManifest(client, target.repository, reference);
    if (!res) throw manifestUnknown(target.repository, reference);
    const observer = this.deps.observer ?? NO_CACHE_OBSERVER;
    const body = await readLimited(res, MAX_MANIFEST_SIZE, `${what} from upstream ${client.name}`, (n) => observer.upstreamBytes(client.name, n));
    const claimed = reference.includes(':') ? reference : responseHeader(res, 'docker-content-digest');
    const digest = claimed ? digestOf(body, parseDigest(claimed).algorithm) : digestOf(body);
    if (claimed && digest !== claimed) {
      throw badGateway(`upstream ${client.name} sent ${what} whose content does not match digest ${claimed}; nothing was stored`);
    }
    const parsed = parseManifest(body, responseHeader(res, 'content-type'));
    await this.store(target, digest, body, parsed);
    this.deps.onFetched?.(target, parsed);
    return { digest, mediaType: parsed.mediaType, body, outcome: 'miss' };
  }

  /**
   * Writes verified manifest bytes into the blob store and records them under the repository,
   * with everything `parsed` references (a push leaves out non-distributable layers first).
   */
  async store(target: Target, digest: string, body: Buffer, parsed: ParsedManifest): Promise<void> {
    const { blobs, index, repos } = this.deps;
    // Held from the check to the record: an eviction must not delete the file between them.
    const release = await blobs.hold(digest);
    try {
      if ((await blobs.size(digest)) === undefined) await blobs.put(digest, body);
      await index.put(digest, body.length);
      await repos.putManifest(target.key, target.repository, manifestRow(digest, body.length, parsed));
    } finally {
      release();
    }
  }

  private async local(target: Target, digest: string, outcome: Outcome): Promise<ManifestResult | undefined> {
    const record = await this.deps.repos.manifest(target.key, target.repository, digest);
    if (!record) return undefined;
    try {
      const body = await this.deps.blobs.readAll(digest);
      await this.deps.index.touch(digest);
      return { digest, mediaType: record.mediaType, body, outcome };
    } catch (err) {
      // Only a missing file means "not here"; any other I/O error (EMFILE, EIO) is reported as such.
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async singleFlight(target: Target, reference: string, run: () => Promise<ManifestResult>): Promise<ManifestResult> {
    const key = flightKey(target, reference);
    const { promise, joined } = this.pending.runJoined(key, run);
    return joined ? { ...(await promise), outcome: 'joined' } : promise;
  }

  /** How much longer a tag request should wait on the check in flight before answering from cache. */
  private remainingWait(target: Target, tag: string): number {
    const since = this.pending.since(flightKey(target, tag)) ?? this.deps.now();
    return Math.max(0, REVALIDATION_WAIT_MS - (this.deps.now() - since));
  }
}

function flightKey(target: Target, reference: string): string {
  return `${target.key}\u0000${target.repository}\u0000${reference}`;
}

async function readLimited(res: UpstreamResponse, limit: number, what: string, received: (bytes: number) => void): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += (chunk as Buffer).length;
    received((chunk as Buffer).length);
    if (total > limit) {
      res.body.destroy();
      throw manifestTooLarge(undefined, what);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Anything but a refusal from a reachable upstream lets the last known digest answer. */
function isUnavailable(err: unknown): boolean {
  return err instanceof OciError ? isTransient(err) : true;
}
