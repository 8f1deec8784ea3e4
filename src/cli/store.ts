/** @module cli/store — `berth fsck`, `berth gc` and `berth ls`: offline work on the store a config names. */
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import type { BerthConfig } from '../config/types.js';
import { BlobStore } from '../storage/blob-files.js';
import { fsck, reconcile } from '../storage/check.js';
import { Evictor, evictionLimits } from '../cache/eviction.js';
import { formatBytes } from './progress.js';
import { openExistingQueue } from '../storage/push-db.js';
import { StoreLayout } from '../storage/layout.js';
import { openLocalIndex, type IndexPorts } from '../storage/local.js';
import { readInUse } from '../storage/in-use.js';
import { StoreMissingError } from '../oci/errors.js';

/** Beside a running berth, content pulled this recently is kept too: its stream may be opening as gc reads. */
export const GC_RECENT_MS = 60_000;

export interface StoreIo {
  readonly out: (line: string) => void;
  readonly now: () => number;
}

/** Opens an existing store; refuses to create one where none is, so a typo'd root is not mistaken for an empty cache. */
function openStore(config: BerthConfig, now: () => number): { blobs: BlobStore; index: IndexPorts } {
  const root = config.storage.rootdirectory;
  if (!existsSync(new StoreLayout(root).metadataDb)) {
    throw new StoreMissingError(`no berth store at ${root} (no metadata.db): check storage.filesystem.rootdirectory or --config`);
  }
  return { blobs: new BlobStore(root), index: openLocalIndex(root, now) };
}

export async function runFsck(config: BerthConfig, repair: boolean, io: StoreIo): Promise<number> {
  const { blobs, index } = openStore(config, io.now);
  try {
    const result = await fsck(blobs, index.blobIndex, {
      repair,
      onProgress: (digest, ok) => {
        if (!ok) io.out(`${repair ? 'removed' : 'CORRUPT'} ${digest}`);
      },
    });
    io.out(
      `checked ${result.checked} blobs (${formatBytes(result.bytes)}): ${result.corrupt.length} corrupt${repair && result.corrupt.length > 0 ? ', removed' : ''}`,
    );
    if (result.corrupt.length > 0 && !repair) io.out('run `berth fsck --repair` to remove them; they are fetched again on the next pull');
    return result.corrupt.length > 0 && !repair ? 1 : 0;
  } finally {
    index.close();
  }
}

export async function runGc(config: BerthConfig, io: StoreIo): Promise<number> {
  const root = config.storage.rootdirectory;
  const { blobs, index } = openStore(config, io.now);
  try {
    await reconcile(blobs, index.blobIndex);
    const running = readInUse(root);
    // Content a write-behind replication still needs stays, as in a running berth; so does what
    // a running berth streams or fills, and (beside one) what was pulled in the last minute.
    const pending = openExistingQueue(root, io.now);
    const since = io.now() - GC_RECENT_MS;
    const kept = async (): Promise<ReadonlySet<string>> => {
      const keep = new Set<string>([...((await pending?.queue.needed()) ?? []), ...(running?.inUse ?? [])]);
      if (running) for (const b of (await index.blobIndex.evictionView()).blobs) if (b.lastAccess >= since) keep.add(b.digest);
      return keep;
    };
    const evictor = new Evictor({
      blobs,
      index: index.blobIndex,
      logger: pino({ level: 'silent' }),
      now: io.now,
      limits: evictionLimits(config),
      inUse: () => false,
      protected: kept,
    });
    const r = await evictor.run('berth gc').finally(() => pending?.close());
    const limit = config.storage.maxsize > 0 ? ` (maxsize ${formatBytes(config.storage.maxsize)})` : ' (no maxsize)';
    io.out(`evicted ${r.evicted} blobs, freed ${formatBytes(r.freedBytes)}; store ${formatBytes(r.totalBefore)} -> ${formatBytes(r.totalAfter)}${limit}`);
    return 0;
  } finally {
    index.close();
  }
}

export async function runLs(config: BerthConfig, io: StoreIo, json = false): Promise<number> {
  const { index } = openStore(config, io.now);
  const { repos, blobIndex } = index;
  try {
    const rows = await repos.listing();
    if (json) {
      // The site's state for `berth export --since`: its images, and every blob it holds.
      const blobs = (await blobIndex.ownDigests()).sort();
      io.out(JSON.stringify({ images: rows, blobs }));
      return 0;
    }
    const lines = [['UPSTREAM', 'REPOSITORY', 'TAG', 'DIGEST', 'SIZE', 'LAST USED']];
    for (const r of rows) {
      const size = (r.size ?? 0) + (await repos.childSizes(r.digest ?? '')).reduce((n, c) => n + (c.size ?? 0), 0);
      lines.push([
        r.upstream || '(local)',
        r.repository,
        r.tag ?? '<none>',
        (r.digest ?? '').slice(0, 19),
        formatBytes(size),
        r.lastAccess ? new Date(r.lastAccess).toISOString() : '-',
      ]);
    }
    const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
    for (const l of lines)
      io.out(
        l
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      );
    io.out(`${rows.length} manifests, store ${formatBytes((await blobIndex.usage()).bytes)}`);
    // Use is recorded per digest: the same manifest under two repositories shares one time.
    io.out('LAST USED: last pull or store of that manifest in any repository (- when never)');
    return 0;
  } finally {
    index.close();
  }
}
