/** @module push/push-visibility — what a pushed manifest may name: content of its own repository, or content the pushing client may read where berth holds it. */
import { type OciError } from '../oci/errors.js';
import { manifestInvalid } from '../oci/error-catalogue.js';
import type { Descriptor, ParsedManifest } from '../oci/manifest.js';
import type { BlobStore } from '../storage/blob-files.js';
import type { ManifestRecords, RepositoryLinks } from '../ports/repository-index.js';
import type { PushSite } from '../ports/push-site.js';
import type { Target } from '../upstream/target.js';

/** Whether the pushing client may pull a repository (its authorisation there); never throws. */
export type Reader = (target: Target) => Promise<boolean>;

/** A client that may read nothing beyond the repository it pushes to. */
export const NO_READER: Reader = () => Promise.resolve(false);

/**
 * Repositories looked at for a digest the pushed-to repository does not link. A blob shared by
 * more is still accepted through the repository itself (upload or mount it there) or the upstream.
 */
export const MAX_READ_SOURCES = 100;

export interface VisibilityDeps {
  readonly blobs: Pick<BlobStore, 'size'>;
  readonly repos: RepositoryLinks & ManifestRecords;
  readonly site?: Pick<PushSite<Target>, 'gatherBlob' | 'gatherManifest'>;
}

/** The children of a pushed manifest, split by whether berth may vouch for them in the repository. */
export interface Children {
  /** Blobs held here and visible to the push: linked to the repository, or readable by the client where they are. */
  readonly visibleBlobs: ReadonlySet<string>;
  /** Blobs berth may not use for this push: only the upstream's copy in the repository can stand for them. */
  readonly unseenBlobs: readonly string[];
  /** Child manifests the repository does not hold. */
  readonly unseenManifests: readonly string[];
}

/**
 * Sorts a manifest's blobs and child manifests. Content stored under another repository counts
 * only when the client may pull that repository: a blob's digest alone must never make private
 * bytes readable under a repository the client can push to. A descriptor whose size differs from
 * the content berth holds is refused (MANIFEST_INVALID). The subject is not a child: the spec has
 * registries accept a manifest whose subject is absent, and it makes nothing readable.
 */
export async function sortChildren(deps: VisibilityDeps, target: Target, parsed: ParsedManifest, reader: Reader): Promise<Children> {
  const visibleBlobs = new Set<string>();
  const unseenBlobs: string[] = [];
  const unseenManifests: string[] = [];
  const mismatched: Array<{ digest: string; declared: number; stored: number }> = [];
  const checkSize = (d: Descriptor, stored: number): void => {
    if (d.size >= 0 && d.size !== stored) mismatched.push({ digest: d.digest, declared: d.size, stored });
  };
  await Promise.all(
    parsed.blobs.map(async (d) => {
      const size = (await mayUse(deps, target, d.digest, reader)) ? await storedSize(deps, target, d.digest) : undefined;
      if (size === undefined) return void unseenBlobs.push(d.digest);
      visibleBlobs.add(d.digest);
      checkSize(d, size);
    }),
  );
  await Promise.all(
    parsed.manifests.map(async (d) => {
      const record = await childManifest(deps, target, d.digest);
      if (!record) return void unseenManifests.push(d.digest);
      checkSize(d, record.size);
    }),
  );
  if (mismatched.length > 0) throw sizeMismatch(mismatched);
  return { visibleBlobs, unseenBlobs, unseenManifests };
}

/**
 * Linked to the repository (uploaded, mounted or referenced there), or linked to one the client
 * may pull; else, at one of a site's replicas, brought from the replica that took the upload
 * (a replica serves another only what that repository may see there).
 */
async function mayUse(deps: VisibilityDeps, target: Target, digest: string, reader: Reader): Promise<boolean> {
  const { repos, site } = deps;
  if (await repos.isLinked(target.key, target.repository, digest)) return true;
  for (const repository of await repos.repositoriesWith(target.key, digest, MAX_READ_SOURCES)) {
    if (repository !== target.repository && (await reader({ ...target, repository }))) return true;
  }
  return (await site?.gatherBlob(target, digest)) ?? false;
}

/** The stored size here, or (an upload another replica took) after bringing it from that replica. */
async function storedSize(deps: VisibilityDeps, target: Target, digest: string): Promise<number | undefined> {
  const size = await deps.blobs.size(digest);
  if (size !== undefined || !(await deps.site?.gatherBlob(target, digest))) return size;
  return deps.blobs.size(digest);
}

async function childManifest(deps: VisibilityDeps, target: Target, digest: string): Promise<{ size: number } | undefined> {
  const { repos, site } = deps;
  const record = await repos.manifest(target.key, target.repository, digest);
  if (record || !(await site?.gatherManifest(target, digest))) return record;
  return repos.manifest(target.key, target.repository, digest);
}

const MAX_SHOWN = 10;

function sizeMismatch(mismatched: ReadonlyArray<{ digest: string; declared: number; stored: number }>): OciError {
  const shown = mismatched.slice(0, MAX_SHOWN);
  const list = shown.map((m) => `${m.digest} is ${m.stored} bytes, not ${m.declared}`).join('; ');
  return manifestInvalid(`the manifest's descriptors disagree with the content they name: ${list}`, { mismatched: shown, count: mismatched.length });
}
