/** @module storage/bundle-log-db — the local (SQLite, metadata.db) implementation of the bundle log port: one row per `berth import`. */
import type Database from 'better-sqlite3';
import type { BundleImport, BundleLog } from '../ports/bundle-log.js';

interface Row {
  id: number;
  at: number;
  source: string;
  images: string;
  blobs_stored: number;
  blobs_skipped: number;
  blobs_refused: number;
  problems: string;
}

export class SqliteBundleLog implements BundleLog {
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {}

  async record(row: Omit<BundleImport, 'id' | 'at'>): Promise<BundleImport> {
    const at = this.now();
    const { lastInsertRowid } = this.db
      .prepare('INSERT INTO bundle_imports (at, source, images, blobs_stored, blobs_skipped, blobs_refused, problems) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(at, row.source, JSON.stringify(row.images), row.blobsStored, row.blobsSkipped, row.blobsRefused, JSON.stringify(row.problems));
    return { id: Number(lastInsertRowid), at, ...row };
  }

  async list(limit: number, offset: number): Promise<{ total: number; items: BundleImport[] }> {
    const { n } = this.db.prepare('SELECT COUNT(*) AS n FROM bundle_imports').get() as { n: number };
    const rows = this.db.prepare('SELECT * FROM bundle_imports ORDER BY id DESC LIMIT ? OFFSET ?').all(limit, offset) as Row[];
    const items = rows.map((r) => ({
      id: r.id,
      at: r.at,
      source: r.source,
      images: JSON.parse(r.images) as string[],
      blobsStored: r.blobs_stored,
      blobsSkipped: r.blobs_skipped,
      blobsRefused: r.blobs_refused,
      problems: JSON.parse(r.problems) as string[],
    }));
    return { total: n, items };
  }
}
