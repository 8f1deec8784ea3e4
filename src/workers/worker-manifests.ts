/** @module workers/worker-manifests — tag checks shared by the workers of one store: one asks the upstream, the others read its answer from the shared index. */
import type { ManifestSite } from '../ports/manifest-site.js';
import type { RepositoryTarget } from '../ports/repository-target.js';
import type { RepositoryIndex } from '../ports/repository-index.js';
import type { WorkerChannel } from './channel.js';

const keyOf = (t: RepositoryTarget, tag: string) => `${t.key}\0${t.repository}\0${tag}`;

/**
 * The workers share the store's index, so a tag another worker just checked is already there
 * with its check time, and its manifest is on disk: only the right to check is coordinated
 * (by the primary), and released once the answer is recorded.
 */
export function workerManifests(channel: WorkerChannel, repos: RepositoryIndex): ManifestSite {
  return {
    tag: async (t, tag) => {
      const r = await repos.tag(t.key, t.repository, tag);
      return r && { digest: r.digest, checkedAt: r.checkedAt };
    },
    publish: async (t, tag) => channel.note({ op: 'releaseTag', key: keyOf(t, tag) }),
    claimCheck: (t, tag) => channel.claimTag(keyOf(t, tag)),
    // Manifests another worker fetched are in the shared store, where this worker looks first.
    fetch: async () => undefined,
  };
}
