/** @module push/push-policy — push policy per upstream pushmode (local, write-through, write-behind) and for the plain registry: blobs, mounts, manifests, deletes. */
import type { Logger } from 'pino';
import { digestOf, parseDigest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import {
  blobUnknown,
  digestInvalid,
  manifestBlobUnknown as manifestBlobUnknownError,
  manifestInvalid,
  manifestUnknown,
  restated,
  tooManyTagParameters,
  unavailable,
  unsupported,
} from '../oci/error-catalogue.js';
import { assertSchemaVersion2, checkAnnotations, parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED, isNonDistributable } from '../oci/mediatypes.js';
import { isTag, parseManifestReference } from '../oci/reference.js';
import type { BlobStore } from '../storage/blob-files.js';
import type { BlobIndex } from '../ports/blob-index.js';
import type { HeldTags } from '../ports/held-tags.js';
import type { ReplicationQueue } from '../ports/replication-queue.js';
import type { ManifestRecords, RepositoryLinks, TagIndex } from '../ports/repository-index.js';
import { blobExists, deleteBlob, deleteManifest, manifestDigest, putManifest } from '../upstream/registry-api.js';
import type { RegistryCache } from '../cache/registry.js';
import type { Replicator, ReplicationWorker } from './replication.js';
import type { Target } from '../upstream/target.js';
import type { PushSite } from '../ports/push-site.js';
import type { UploadManager, UploadSession } from './uploads.js';
import { NO_READER, sortChildren, type Reader } from './push-visibility.js';

/** `plain`: no upstream at all, berth is the registry. */
export type WriteMode = 'plain' | 'readonly' | 'local' | 'write-through' | 'write-behind';

export function writeMode(target: Target): WriteMode {
  return target.upstream ? target.upstream.config.pushmode : 'plain';
}

export interface PushDeps {
  readonly blobs: BlobStore;
  readonly index: BlobIndex;
  readonly repos: RepositoryLinks & ManifestRecords & TagIndex;
  readonly cache: RegistryCache;
  readonly queue: ReplicationQueue;
  readonly heldTags: HeldTags;
  readonly uploads: UploadManager;
  readonly replicator: Replicator;
  readonly worker: ReplicationWorker;
  readonly logger: Logger;
  readonly deleteEnabled: boolean;
  /** One of a site's replicas (`cluster:`): the other replicas as holders of pushed content. */
  readonly site?: PushSite<Target>;
}

export interface PushedManifest {
  readonly digest: string;
  readonly subject: string | undefined;
  /** The tags now pointing at it: the URL's tag, or the `?tag=` parameters of a push by digest. */
  readonly tags: readonly string[];
}

/** Tags one push by digest may set with `?tag=` (the spec asks for at least 10). */
export const MAX_TAG_PARAMS = 100;

export class PushService {
  constructor(private readonly deps: PushDeps) {}

  get uploads(): UploadManager {
    return this.deps.uploads;
  }

  /** The mode for a write, or 405 naming the setting that enables writes. */
  writable(target: Target): Exclude<WriteMode, 'readonly'> {
    const mode = writeMode(target);
    if (mode === 'readonly') {
      throw unsupported(
        `pushes and deletes are disabled for upstream ${target.upstream!.config.name}: its pushmode is readonly; set pushmode to local, write-through or write-behind to accept them`,
      );
    }
    return mode;
  }

  /** Completes an upload: verify, publish, then what the mode requires before the client hears 201. */
  async completeUpload(target: Target, session: UploadSession, digest: string): Promise<void> {
    parseDigest(digest);
    // Held from the commit to the record, so an eviction of the same digest cannot delete the new file.
    const release = await this.deps.blobs.hold(digest);
    try {
      const { size } = await this.deps.uploads.finish(session, digest);
      await this.stored(target, digest, size);
    } finally {
      release();
    }
  }

  /** Cross-repository mount: true when the blob is now in the target repository (201), false for a normal upload (202). */
  async mount(target: Target, from: Target, digest: string): Promise<boolean> {
    parseDigest(digest);
    const { blobs, repos } = this.deps;
    if (from.key !== target.key || !(await repos.isLinked(from.key, from.repository, digest))) return false;
    const release = await blobs.hold(digest);
    try {
      const size = await blobs.size(digest);
      if (size === undefined) return false;
      await this.stored(target, digest, size);
      return true;
    } finally {
      release();
    }
  }

  private async stored(target: Target, digest: string, size: number): Promise<void> {
    const { index, repos, queue, replicator, worker, cache } = this.deps;
    await index.put(digest, size);
    await repos.link(target.key, target.repository, digest);
    const mode = writeMode(target);
    // Content only berth holds is never evicted; what the upstream has (or will have) stays a cache.
    if (mode === 'plain' || mode === 'local') await index.setPinned(digest, true);
    if (mode === 'write-through') await this.through(target, () => replicator.ensureBlob(target, digest));
    if (mode === 'write-behind') {
      await queue.enqueueBlob(target.key, target.repository, digest);
      worker.kick(target.key);
    }
    cache.maybeEvict();
  }

  /**
   * Stores a pushed manifest; `tagParams` are the `?tag=` values of a push by digest (OCI
   * distribution-spec 1.1); `reader` says which other repositories the client may pull, whose
   * content the manifest may then name too.
   */
  async putManifest(
    target: Target,
    reference: string,
    body: Buffer,
    contentType: string | undefined,
    tagParams: readonly string[] = [],
    reader: Reader = NO_READER,
  ): Promise<PushedManifest> {
    const mode = this.writable(target);
    const ref = parseManifestReference(reference);
    if (!ref) throw manifestInvalid(`"${reference.slice(0, 200)}" is neither a valid tag nor a digest`, { reference: reference.slice(0, 200) });
    const tags = ref.kind === 'tag' ? [ref.tag] : [...new Set(tagParams)];
    if (tags.length > MAX_TAG_PARAMS) throw tooManyTagParameters(MAX_TAG_PARAMS);
    const badTag = tags.find((t) => !isTag(t));
    if (badTag !== undefined) throw manifestInvalid(`tag parameter "${badTag.slice(0, 200)}" is not a valid tag`, { tag: badTag.slice(0, 200) });
    const whole = parseManifest(body, contentType);
    checkAnnotations(whole);
    // Non-distributable (foreign) layers live at their `urls`: neither required here nor replicated.
    const parsed: ParsedManifest = { ...whole, blobs: whole.blobs.filter((b) => !isNonDistributable(b.mediaType)) };
    if (parsed.mediaType === DOCKER_MANIFEST_V1 || parsed.mediaType === DOCKER_MANIFEST_V1_SIGNED) {
      throw manifestInvalid('Docker schema 1 manifests are not accepted for push; push an OCI or Docker schema 2 image');
    }
    assertSchemaVersion2(body);
    const digest = digestOf(body, ref.kind === 'digest' ? parseDigest(ref.digest).algorithm : 'sha256');
    if (ref.kind === 'digest' && digest !== ref.digest) {
      throw digestInvalid(`manifest content has digest ${digest}, not ${ref.digest} as the URL says`, { expected: ref.digest, actual: digest });
    }
    const { index, repos, queue, heldTags, worker, cache } = this.deps;
    const children = [
      ...parsed.blobs.map((d) => ({ kind: 'blob' as const, digest: d.digest })),
      ...parsed.manifests.map((d) => ({ kind: 'manifest' as const, digest: d.digest })),
    ];
    // Every mode: nothing is stored, tagged or queued unless the manifest names only content it may.
    const visible = await this.checkChildren(target, parsed, reader);
    if (mode === 'write-through') await this.throughManifest(target, reference, digest, parsed, visible, body, ref.kind === 'digest' ? tags : []);

    await cache.storeManifest(target, digest, body, parsed);
    await repos.link(target.key, target.repository, digest);
    if (mode === 'plain' || mode === 'local') await index.setPinned(digest, true);
    if (mode === 'write-behind') {
      await this.secondCopy(target, digest, parsed);
      // Queued before the tags are visible: an accepted push is never lost, even to a crash right here.
      if (tags.length === 0) await queue.enqueueManifest(target.key, target.repository, digest, children);
      for (const tag of tags) {
        const baseDigest = (await repos.tag(target.key, target.repository, tag))?.digest ?? null;
        await queue.enqueueManifest(target.key, target.repository, digest, children, { tag, baseDigest });
      }
      worker.kick(target.key);
    }
    for (const tag of tags) {
      if (mode === 'local') await heldTags.hold(target.key, target.repository, tag, digest, 'local');
      await repos.setTag(target.key, target.repository, tag, digest);
    }
    return { digest, subject: parsed.subject?.digest, tags };
  }

  /** A site's replicas: another one keeps what this one stores of the push (see PushSite). */
  private async secondCopy(target: Target, digest: string, parsed: ParsedManifest): Promise<void> {
    const { site, blobs, repos } = this.deps;
    if (!site) return;
    const stored = await Promise.all(parsed.blobs.map(async ({ digest: d }) => ((await blobs.size(d)) !== undefined ? [d] : [])));
    const children = await Promise.all(
      parsed.manifests.map(async ({ digest: d }) => {
        const record = await repos.manifest(target.key, target.repository, d);
        return record ? [{ digest: d, mediaType: record.mediaType }] : [];
      }),
    );
    await site.secondCopy(target, [...new Set(stored.flat())], [...children.flat(), { digest, mediaType: parsed.mediaType }]);
  }

  /**
   * Every referenced blob and child manifest must be visible to the push here (see
   * push-visibility), or be in the repository at the upstream. Returns the blobs berth vouches for.
   */
  private async checkChildren(target: Target, parsed: ParsedManifest, reader: Reader): Promise<ReadonlySet<string>> {
    const { visibleBlobs, unseenBlobs, unseenManifests } = await sortChildren(this.deps, target, parsed, reader);
    const missing: string[] = [];
    const unasked: string[] = [];
    const settle = (digest: string, upstream: boolean | undefined): void => {
      if (upstream === false) missing.push(digest);
      else if (upstream === undefined) unasked.push(digest);
    };
    await Promise.all([
      ...unseenBlobs.map(async (digest) =>
        settle(digest, await this.upstreamHas(target, () => blobExists(target.upstream!.client, target.repository, digest))),
      ),
      ...unseenManifests.map(async (digest) =>
        settle(digest, await this.upstreamHas(target, async () => (await manifestDigest(target.upstream!.client, target.repository, digest)) === digest)),
      ),
    ]);
    if (missing.length > 0) throw manifestBlobUnknown(target, missing);
    if (unasked.length > 0) throw manifestContentUnverified(target, unasked);
    return visibleBlobs;
  }

  /** Whether the upstream has an item: undefined when it could not answer (down, 5xx); any other refusal counts as no. */
  private async upstreamHas(target: Target, check: () => Promise<boolean>): Promise<boolean | undefined> {
    if (!target.upstream) return false;
    try {
      return await check();
    } catch (err) {
      this.deps.logger.debug({ upstream: target.key, err: (err as Error).message }, 'could not ask the upstream about a manifest reference');
      return err instanceof OciError && err.code !== 'UNAVAILABLE' ? false : undefined;
    }
  }

  /**
   * write-through: every child reaches the upstream, then the manifest; only then is anything
   * recorded here. Only `visible` blobs are sent from here; the others are already upstream.
   */
  private async throughManifest(
    target: Target,
    reference: string,
    digest: string,
    parsed: ParsedManifest,
    visible: ReadonlySet<string>,
    body: Buffer,
    tagParams: readonly string[],
  ): Promise<void> {
    const { replicator } = this.deps;
    const missing: string[] = [];
    await this.through(target, () =>
      Promise.all([
        ...[...visible].map(async (d) => {
          await replicator.ensureBlob(target, d).catch((err: unknown) => {
            if (err instanceof OciError && err.code === 'BLOB_UNKNOWN') missing.push(d);
            else throw err;
          });
        }),
        ...parsed.manifests.map(async ({ digest: d }) => {
          await replicator.ensureManifest(target, d).catch((err: unknown) => {
            if (err instanceof OciError && err.code === 'MANIFEST_UNKNOWN') missing.push(d);
            else throw err;
          });
        }),
      ]),
    );
    if (missing.length > 0) throw manifestBlobUnknown(target, missing);
    await this.through(target, () => putManifest(target.upstream!.client, target.repository, reference, parsed.mediaType, body));
    // One PUT per tag: the central registry may not know tag parameters.
    for (const tag of tagParams) await this.through(target, () => putManifest(target.upstream!.client, target.repository, tag, parsed.mediaType, body));
    this.deps.logger.info({ upstream: target.key, repository: target.repository, reference, digest }, 'write-through push accepted by the upstream');
  }

  /** Runs an upstream step of a write-through push; its failure is the client's, named as such. */
  private async through<T>(target: Target, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      const e = err instanceof OciError ? err : unavailable((err as Error).message);
      throw restated(e, `write-through push to upstream ${target.key} failed, nothing was tagged: ${e.message}`);
    }
  }

  async deleteManifest(target: Target, reference: string): Promise<void> {
    const mode = this.deletable(target);
    const { repos, heldTags } = this.deps;
    const ref = parseManifestReference(reference);
    if (!ref) throw manifestUnknown(target.repository, reference.slice(0, 200));
    if (ref.kind === 'tag') {
      const known = (await repos.tag(target.key, target.repository, ref.tag)) !== undefined;
      if (mode === 'write-through') await this.through(target, () => deleteManifest(target.upstream!.client, target.repository, ref.tag));
      else if (!known) throw manifestUnknown(target.repository, ref.tag);
      await repos.deleteTag(target.key, target.repository, ref.tag);
      await heldTags.release(target.key, target.repository, ref.tag);
      return;
    }
    const known = (await repos.manifest(target.key, target.repository, ref.digest)) !== undefined;
    if (mode === 'write-through') await this.through(target, () => deleteManifest(target.upstream!.client, target.repository, ref.digest));
    else if (!known) throw manifestUnknown(target.repository, ref.digest);
    await repos.deleteManifest(target.key, target.repository, ref.digest);
    await repos.unlink(target.key, target.repository, ref.digest);
    await heldTags.releaseTagsOf(target.key, target.repository, ref.digest);
    await this.dropIfUnreferenced(ref.digest);
  }

  async deleteBlob(target: Target, digest: string): Promise<void> {
    const mode = this.deletable(target);
    parseDigest(digest);
    const { repos } = this.deps;
    const linked = await repos.isLinked(target.key, target.repository, digest);
    if (mode === 'write-through') await this.through(target, () => deleteBlob(target.upstream!.client, target.repository, digest));
    else if (!linked) throw blobUnknown(digest);
    await repos.unlink(target.key, target.repository, digest);
    await this.dropIfUnreferenced(digest);
  }

  /** Bytes no repository links any more are removed; shared ones stay for the others. */
  private async dropIfUnreferenced(digest: string): Promise<void> {
    const { index, repos, queue, blobs } = this.deps;
    if ((await repos.isReferenced(digest)) || (await queue.needs(digest))) return;
    await index.forget(digest);
    await blobs.delete(digest);
  }

  private deletable(target: Target): WriteMode {
    const mode = this.writable(target);
    if (!this.deps.deleteEnabled) throw unsupported('deletes are disabled: set storage.delete.enabled to true to allow DELETE of manifests and blobs');
    if (mode === 'write-behind') {
      throw unsupported(`deletes are not replicated by write-behind (upstream ${target.key}): delete at the central registry, or use pushmode write-through`);
    }
    return mode;
  }
}

const MAX_MISSING_SHOWN = 10;

/** Not the client's fault: whether the content exists cannot be known until the upstream answers. */
function manifestContentUnverified(target: Target, unasked: string[]): OciError {
  const shown = unasked.slice(0, MAX_MISSING_SHOWN);
  return unavailable(
    `the manifest references content berth does not hold in ${target.repository} (${shown.join(', ')}) and upstream ${target.key} could not be asked: retry when it is reachable, or push that content first`,
    { unverified: shown, count: unasked.length },
  );
}

function manifestBlobUnknown(target: Target, missing: string[]): OciError {
  const where = target.upstream ? `neither berth nor upstream ${target.key} has` : 'this registry does not have';
  // A short answer however many are missing: the first few name the problem.
  const shown = missing.slice(0, MAX_MISSING_SHOWN);
  const more = missing.length > shown.length ? ` and ${missing.length - shown.length} more` : '';
  return manifestBlobUnknownError(
    `the manifest references content ${where} in ${target.repository}: ${shown.join(', ')}${more}; push those blobs (or manifests) first`,
    {
      missing: shown,
      count: missing.length,
    },
  );
}
