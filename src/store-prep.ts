/** @module store-prep — what `berth serve` does to the store once per start, before any process serves from it. */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BerthConfig } from './config/types.js';
import { instanceId } from './upstream/loop.js';
import { BlobStore } from './storage/blob-files.js';
import { openLocalIndex, openLocalPush } from './storage/local.js';
import { reconcile } from './storage/check.js';
import { DiskSpace } from './storage/disk-space.js';
import { isDiskFull } from './oci/errors.js';
import { UploadManager } from './push/uploads.js';

/**
 * What happens once per start whatever the number of workers, before any serves: partial files
 * of an earlier run go, the databases reach the current schema, the index meets the disk. On a
 * full disk too: tmp/ and (when that is not enough) every partial upload go, and the reserve is
 * released if SQLite needs it to open.
 */
export async function prepareStore(config: BerthConfig, deps: { readonly logger: Logger; readonly now: () => number }): Promise<void> {
  const { logger, now } = deps;
  const root = config.storage.rootdirectory;
  await mkdir(root, { recursive: true });
  const blobs = new BlobStore(root);
  const { removedTemp } = await blobs.init();
  if (removedTemp > 0) logger.info({ removedTemp }, 'removed partial files left by an earlier stop');
  const space = await openDiskSpace(config, logger, true);
  try {
    const index = await space.retrying(() => openLocalIndex(root, now, space), 'opening metadata.db');
    try {
      const reconciled = await reconcile(blobs, index.blobIndex);
      if (reconciled.adopted + reconciled.forgotten > 0) logger.info(reconciled, 'metadata reconciled with the files on disk');
    } finally {
      index.close();
    }
    const push = await space.retrying(() => openLocalPush(root, now, space), 'opening push.db');
    try {
      await new UploadManager({ blobs, rows: push.uploads, logger, now, purging: config.storage.uploadpurging }).cleanUp();
    } finally {
      push.close();
    }
    await storeInstanceId(root, space, logger);
  } finally {
    space.close();
  }
}

/**
 * One process's view of the store's free space: the reserve sized and written when there is
 * room. `prepare`: the process that prepares the store, which frees what a full disk left.
 */
export async function openDiskSpace(config: BerthConfig, logger: Logger, prepare: boolean): Promise<DiskSpace> {
  const space = new DiskSpace({ root: config.storage.rootdirectory, reserve: config.storage.reserve, logger });
  await space.init();
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
