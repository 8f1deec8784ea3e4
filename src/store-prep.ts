/** @module store-prep — what `berth serve` does to the store once per start, before any process serves from it. */
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BerthConfig } from './config/types.js';
import { instanceId } from './upstream/loop.js';
import { BlobStore } from './storage/blobs.js';
import { openLocalIndex, openLocalPush } from './storage/local.js';
import { reconcile } from './storage/check.js';
import { UploadManager } from './cache/uploads.js';

/**
 * What happens once per start whatever the number of workers, before any serves: partial files
 * of an earlier run go, the databases reach the current schema, the index meets the disk.
 */
export async function prepareStore(config: BerthConfig, deps: { readonly logger: Logger; readonly now: () => number }): Promise<void> {
  const { logger, now } = deps;
  const root = config.storage.rootdirectory;
  await mkdir(root, { recursive: true });
  const blobs = new BlobStore(root);
  const { removedTemp } = await blobs.init();
  if (removedTemp > 0) logger.info({ removedTemp }, 'removed partial files left by an earlier stop');
  const index = openLocalIndex(root, now);
  try {
    const reconciled = await reconcile(blobs, index.blobIndex);
    if (reconciled.adopted + reconciled.forgotten > 0) logger.info(reconciled, 'metadata reconciled with the files on disk');
  } finally {
    index.close();
  }
  const push = openLocalPush(root, now);
  try {
    await new UploadManager({ blobs, rows: push.uploads, logger, now, purging: config.storage.uploadpurging }).cleanUp();
  } finally {
    push.close();
  }
  await instanceId(root);
}
