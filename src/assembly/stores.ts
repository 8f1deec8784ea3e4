/** @module assembly/stores — opens the store a serving process uses: blob files, free space, metadata.db, push.db, its instance id and berth.lock. */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/types.js';
import { isDiskFull } from '../oci/errors.js';
import type { BlobIndex } from '../ports/blob-index.js';
import { BlobStore } from '../storage/blob-files.js';
import { reconcile } from '../storage/check.js';
import { DiskSpace } from '../storage/disk-space.js';
import { InUseRecord } from '../storage/in-use.js';
import { openLocalIndex, openLocalPush, type IndexPorts, type PushPorts } from '../storage/local.js';
import { loadZeroCopy, type ZeroCopy } from '../storage/zero-copy.js';
import { instanceId } from '../upstream/loop.js';

export interface Stores {
  readonly root: string;
  readonly blobs: BlobStore;
  /** Metadata writes on a full disk: the reserve (storage/disk-space) is released for them. */
  readonly space: DiskSpace;
  readonly index: IndexPorts;
  readonly push: PushPorts;
  /** The store's instance id (the Berth-Instance header). */
  readonly instance: string;
  /** berth.lock: `berth gc` run beside this process (and the other workers) leave what it streams or fills alone. */
  readonly inUse: InUseRecord;
  /** Binds sendfile(2) for stored blobs (unless `http.sendfile: false`); until then they are copied. Called once listening. */
  bindZeroCopy(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** A serving worker: the primary prepared the store (partial files, free space, reconcile). */
  readonly prepared: boolean;
  /** The lead process says which way stored blobs go. */
  readonly announce: boolean;
  /** A worker's slot, recorded in berth.lock. */
  readonly slot?: number;
}

export async function openStores(config: BerthConfig, deps: { logger: Logger; now: () => number }, o: StoreOptions): Promise<Stores> {
  const { logger, now } = deps;
  const root = config.storage.rootdirectory;
  const blobs = await openBlobs(config, logger, o.prepared);
  const space = await openDiskSpace(config, logger, !o.prepared);
  const index = await space.retrying(() => openLocalIndex(root, now, space), 'opening metadata.db');
  const push = await space.retrying(() => openLocalPush(root, now, space), 'opening push.db');
  const instance = await storeInstanceId(root, space, logger);
  const inUse = new InUseRecord(root, now, process.pid, o.slot);
  await space
    .retrying(() => inUse.open(), 'berth.lock')
    .catch((err: unknown) => {
      // Not a reason to stay down: it is rewritten with the next change of what is in use.
      if (!isDiskFull(err)) throw err;
      logger.warn({ err: (err as Error).message }, 'disk full: berth.lock could not be written yet');
    });
  return {
    root,
    blobs,
    space,
    index,
    push,
    instance,
    inUse,
    bindZeroCopy: async () => {
      const zeroCopy = await zeroCopyFor(config, o.announce ? logger : undefined);
      if (zeroCopy) blobs.useZeroCopy(zeroCopy);
    },
    close: async () => {
      await inUse.close();
      blobs.closeFiles();
      push.close();
      index.close();
      space.close();
    },
  };
}

/** The blob files; `keepTemp`: a worker's siblings may be writing there, the primary cleared what an earlier run left. */
export async function openBlobs(config: BerthConfig, logger: Logger, keepTemp: boolean): Promise<BlobStore> {
  const root = config.storage.rootdirectory;
  await mkdir(root, { recursive: true });
  const blobs = new BlobStore(root);
  const { removedTemp } = await blobs.init(keepTemp);
  if (removedTemp > 0) logger.info({ removedTemp }, 'removed partial files left by an earlier stop');
  return blobs;
}

/** The index meets the disk: files without a record are adopted, records without a file forgotten. */
export async function reconcileStore(blobs: BlobStore, index: BlobIndex, logger: Logger, signal?: AbortSignal): Promise<void> {
  const reconciled = await reconcile(blobs, index, signal);
  index.shrinkMemory?.();
  if (reconciled.adopted + reconciled.forgotten > 0) logger.info(reconciled, 'metadata reconciled with the files on disk');
}

/** sendfile(2) unless `http.sendfile: false`; the lead process says which way stored blobs go, and why when they are copied. */
async function zeroCopyFor(config: BerthConfig, logger: Logger | undefined): Promise<ZeroCopy | undefined> {
  if (!config.http.sendfile) {
    logger?.info('stored blobs are copied to plain TCP clients (http.sendfile: false)');
    return undefined;
  }
  const { zeroCopy, reason } = await loadZeroCopy();
  if (zeroCopy) logger?.info('stored blobs go to plain TCP clients by sendfile(2)');
  else logger?.warn({ reason }, 'sendfile(2) is not available: stored blobs are copied to every client');
  return zeroCopy;
}

/**
 * One process's view of the store's free space: the reserve sized and written when there is
 * room. `prepare`: the process that prepares the store, which frees what a full disk left.
 */
export async function openDiskSpace(config: BerthConfig, logger: Logger, prepare: boolean): Promise<DiskSpace> {
  const space = new DiskSpace({ root: config.storage.rootdirectory, reserve: config.storage.reserve, logger });
  // Written in the background: a reserve is for a disk that fills later, not for the start.
  await space.init(true);
  if (prepare) await space.freeAtStart();
  return space;
}

/** The store's instance id; on a disk too full to record it, one for this run (never a reason not to start). */
export async function storeInstanceId(root: string, space: DiskSpace, logger: Logger): Promise<string> {
  try {
    return (await space.retrying(() => instanceId(root), 'instance id'))!;
  } catch (err) {
    if (!isDiskFull(err)) throw err;
    logger.warn({ err: (err as Error).message }, 'disk full: the instance id could not be recorded; this run uses its own');
    return randomUUID();
  }
}
