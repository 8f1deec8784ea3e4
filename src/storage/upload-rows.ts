/** @module storage/upload-rows — the local (SQLite, push.db) implementation of the upload sessions port. */
import type Database from 'better-sqlite3';
import type { UploadRow, UploadSessions } from '../ports/upload-sessions.js';

/** Rows of client uploads in progress; the bytes are temp files under <root>/uploads. */
export class SqliteUploadSessions implements UploadSessions {
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {}

  async insert(id: string, upstream: string, repository: string): Promise<void> {
    const t = this.now();
    this.db.prepare('INSERT INTO uploads (id, upstream, repository, created_at, updated_at) VALUES (?, ?, ?, ?, ?)').run(id, upstream, repository, t, t);
  }

  async get(id: string): Promise<UploadRow | undefined> {
    return this.db.prepare('SELECT id, upstream, repository, created_at AS createdAt, updated_at AS updatedAt FROM uploads WHERE id = ?').get(id) as
      UploadRow | undefined;
  }

  async touch(id: string): Promise<void> {
    this.db.prepare('UPDATE uploads SET updated_at = ? WHERE id = ?').run(this.now(), id);
  }

  async delete(id: string): Promise<void> {
    this.db.prepare('DELETE FROM uploads WHERE id = ?').run(id);
  }

  async all(): Promise<UploadRow[]> {
    return this.db.prepare('SELECT id, upstream, repository, created_at AS createdAt, updated_at AS updatedAt FROM uploads').all() as UploadRow[];
  }
}
