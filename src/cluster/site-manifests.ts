/** @module cluster/site-manifests — the site's tag records and its replicas' manifests, for the manifest cache. */
import type { ManifestSite } from '../ports/manifest-site.js';
import type { RepositoryTarget } from '../ports/repository-target.js';
import { MAX_MANIFEST_SIZE } from '../oci/manifest.js';
import type { BlobHolders, TagRecords } from '../ports/site.js';
import type { PeerClient } from './peer-client.js';

/** One replica asks the upstream about a tag; the others wait this long for its answer at most. */
const TAG_CHECK_MS = 5_000;

export function siteManifests(site: TagRecords & BlobHolders, peers: PeerClient, live: () => ReadonlySet<string> | undefined): ManifestSite {
  const alone = () => live() === undefined;
  return {
    tag: async (t: RepositoryTarget, tag: string) => (alone() ? undefined : site.tag(t.key, t.repository, tag)),
    publish: async (t: RepositoryTarget, tag: string, digest: string, checkedAt: number) => {
      if (!alone()) await site.putTag(t.key, t.repository, tag, { digest, checkedAt });
    },
    claimCheck: async (t: RepositoryTarget, tag: string) => alone() || site.claimTagCheck(t.key, t.repository, tag, TAG_CHECK_MS),
    fetch: async (t: RepositoryTarget, digest: string) => {
      const members = live();
      if (!members) return undefined;
      for (const h of (await site.holders(digest)).filter((h) => h !== site.self && members.has(h))) {
        try {
          const { body } = await peers.open(h, t.key, t.repository, digest, 0, 'held');
          const chunks: Buffer[] = [];
          let n = 0;
          for await (const c of body) {
            n += c.length;
            if (n > MAX_MANIFEST_SIZE) break;
            chunks.push(Buffer.from(c));
          }
          if (n <= MAX_MANIFEST_SIZE) return Buffer.concat(chunks);
        } catch {
          // The next holder, or the upstream.
        }
      }
      return undefined;
    },
  };
}
