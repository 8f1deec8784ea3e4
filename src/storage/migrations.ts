/** @module storage/migrations — schema versions and forward migrations for berth's SQLite files. */
import Database from 'better-sqlite3';

/** Migration n (1-based) takes a database from version n-1 to n; each runs once, in a transaction. */
export type Migration = (db: Database.Database) => void;

/**
 * Brings a database to the newest version. Version 0 is a new file or one written before
 * versions were recorded (berth 0.1.0): every migration is written so it also applies to such a
 * file (CREATE ... IF NOT EXISTS, columns added only when missing). A file newer than this code
 * is refused rather than misread.
 */
export function migrate(db: Database.Database, name: string, migrations: readonly Migration[]): { from: number; to: number } {
  const from = db.pragma('user_version', { simple: true }) as number;
  if (from > migrations.length) {
    throw new Error(`${name} has schema version ${from}, newer than this berth understands (${migrations.length}): upgrade berth`);
  }
  for (let v = from; v < migrations.length; v++) {
    db.transaction(() => {
      migrations[v]!(db);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
  return { from, to: migrations.length };
}

/** Adds a column unless a table already has it (SQLite has no ADD COLUMN IF NOT EXISTS). */
export function addColumn(db: Database.Database, table: string, column: string, definition: string): void {
  const columns = db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>;
  if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
}

/**
 * Opens one of berth's SQLite files in WAL mode and brings it to the newest version.
 * `synchronous`: NORMAL survives a killed process; FULL also a power loss.
 */
export function openDatabase(file: string, name: string, migrations: readonly Migration[], synchronous: 'NORMAL' | 'FULL'): Database.Database {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma('busy_timeout = 5000');
    migrate(db, name, migrations);
  } catch (err) {
    // A full disk refuses the WAL index: the caller frees space and opens again.
    db.close();
    throw err;
  }
  return db;
}
