/** @module ports/bundle-log — the port for the record of bundles imported into a store (`berth import`), listed on the dashboard. */

/** One import of a bundle, either path (`--config` or `--server`). */
export interface BundleImport {
  readonly id: number;
  /** When it ended, ms since the epoch. */
  readonly at: number;
  /** The bundle as the importer named it (its path). */
  readonly source: string;
  /** The images recorded under their names. */
  readonly images: readonly string[];
  readonly blobsStored: number;
  /** Blobs already in the store, not read again. */
  readonly blobsSkipped: number;
  /** Blobs refused for a wrong digest or size. */
  readonly blobsRefused: number;
  /** Images not imported (with why). */
  readonly problems: readonly string[];
}

export interface BundleLog {
  record(row: Omit<BundleImport, 'id' | 'at'>): Promise<BundleImport>;
  /** Newest first. */
  list(limit: number, offset: number): Promise<{ total: number; items: BundleImport[] }>;
}
