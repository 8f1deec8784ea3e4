/** @module assembly/store-prep — what `berth serve` does to the store once per start, before any process serves from it. */
import type { Logger } from 'pino';
import type { BerthConfig } from '../config/types.js';
import { openLocalIndex, openLocalPush } from '../storage/local.js';
import { UploadManager } from '../push/uploads.js';
import { openBlobs, openDiskSpace, storeInstanceId } from './stores.js';

/**
 * What happens once per start whatever the number of workers, before any serves: partial files
 * of an earlier run go, the databases reach the current schema. On a
 * full disk too: tmp/ and (when that is not enough) every partial upload go, and the reserve is
 * released if SQLite needs it to open.
 */
export async function prepareStore(config: BerthConfig, deps: { readonly logger: Logger; readonly now: () => number }): Promise<void> {
  const { logger, now } = deps;
  const root = config.storage.rootdirectory;
  const blobs = await openBlobs(config, logger, false);
  const space = await openDiskSpace(config, logger, true);
  try {
    // Opened to bring its schema up to date; the lead worker reconciles it after listening.
    const index = await space.retrying(() => openLocalIndex(root, now, space), 'opening metadata.db');
    index.close();
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
