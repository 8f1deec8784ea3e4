/** @module storage/layout-writer — opens the writer of a bundle: one tar file when the path ends in `.tar` (storage/tar-file-writer), else a directory (storage/oci-layout). */
import type { FileDigests } from './blob-files.js';
import { isTarPath, openDirLayoutWriter, type LayoutWriter } from './oci-layout.js';
import { TarFileWriter } from './tar-file-writer.js';

/** `hasher`: stored blob files are then copied in whole (addFile), hashed on the hasher's threads. */
export function openLayoutWriter(path: string, hasher?: FileDigests): Promise<LayoutWriter> {
  return isTarPath(path) ? TarFileWriter.open(path, hasher) : openDirLayoutWriter(path, hasher);
}
