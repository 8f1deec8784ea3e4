/** @module storage/metadata — SQLite record of tags, manifests, repository links, sizes and last access. */
import type { BundleLog } from '../ports/bundle-log.js';
import { SqliteBundleLog } from './bundle-log-db.js';
import type Database from 'better-sqlite3';
import type { EvictionView } from '../ports/blob-index.js';
import type { ImageRow, ListingRow, ManifestRecord, NewManifest, ReferrerRecord, ReferrersQuery, TagRecord } from '../ports/repository-index.js';
import { StoreLayout } from './layout.js';
import { openDatabase } from './migrations.js';
import { METADATA_MIGRATIONS } from './metadata-schema.js';
import { isDiskFull } from '../oci/errors.js';
import { PendingTouches } from './touches.js';

export class MetadataStore {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly touches = new PendingTouches((times) => this.writeTouches(times));

  constructor(
    root: string,
    private readonly now: () => number,
  ) {
    // NORMAL in WAL mode survives a process crash; blob files carry their own fsync.
    this.db = openDatabase(new StoreLayout(root).metadataDb, 'metadata.db', METADATA_MIGRATIONS, 'NORMAL');
  }

  close(): void {
    try {
      this.touches.flush();
    } finally {
      this.db.close();
    }
  }

  /** SQLite's page cache back to the allocator: after a one-off read of every row (the start-up reconciliation). */
  shrinkMemory(): void {
    this.db.pragma('shrink_memory');
  }

  /** The record of imported bundles, in this database. */
  bundleLog(): BundleLog {
    return new SqliteBundleLog(this.db, this.now);
  }

  /** Each statement is compiled once: a blob request runs three or four, and compiling is most of their cost. */
  private sql(text: string): Database.Statement {
    let stmt = this.statements.get(text);
    if (!stmt) {
      stmt = this.db.prepare(text);
      this.statements.set(text, stmt);
    }
    return stmt;
  }

  putBlob(digest: string, size: number): void {
    this.touches.drop(digest);
    const t = this.now();
    this.db
      .prepare(
        'INSERT INTO blobs (digest, size, created_at, last_access) VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO UPDATE SET last_access = excluded.last_access',
      )
      .run(digest, size, t, t);
  }

  blob(digest: string): { size: number; lastAccess: number } | undefined {
    const row = this.sql('SELECT size, last_access AS lastAccess FROM blobs WHERE digest = ?').get(digest) as { size: number; lastAccess: number } | undefined;
    const waiting = row && this.touches.get(digest);
    return waiting ? { ...row, lastAccess: waiting } : row;
  }

  /** Recorded now, written within TOUCH_FLUSH_MS or before the next read of access times (storage/touches). */
  touchBlob(digest: string): void {
    this.touches.note(digest, this.now());
  }

  /** Best effort: access times steer eviction, and a full disk must not fail the reads that recorded them. */
  private writeTouches(times: ReadonlyMap<string, number>): void {
    const update = this.sql('UPDATE blobs SET last_access = ? WHERE digest = ?');
    try {
      this.db.transaction(() => {
        for (const [digest, at] of times) update.run(at, digest);
      })();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
    }
  }

  deleteBlob(digest: string): void {
    this.sql('DELETE FROM blobs WHERE digest = ?').run(digest);
  }

  /** Up to `limit` blob digests after `after`, in order: the blob list in pages, for callers that must not hold the event loop. */
  blobDigestsAfter(after: string, limit: number): string[] {
    return (this.sql('SELECT digest FROM blobs WHERE digest > ? ORDER BY digest LIMIT ?').all(after, limit) as Array<{ digest: string }>).map((r) => r.digest);
  }

  linkBlob(upstream: string, repository: string, digest: string): void {
    try {
      this.sql('INSERT OR IGNORE INTO repository_blobs (upstream, repository, digest) VALUES (?, ?, ?)').run(upstream, repository, digest);
    } catch (err) {
      if (!isDiskFull(err)) throw err;
    }
  }

  isBlobLinked(upstream: string, repository: string, digest: string): boolean {
    return this.sql('SELECT 1 FROM repository_blobs WHERE upstream = ? AND repository = ? AND digest = ?').get(upstream, repository, digest) !== undefined;
  }

  unlinkBlob(upstream: string, repository: string, digest: string): void {
    this.sql('DELETE FROM repository_blobs WHERE upstream = ? AND repository = ? AND digest = ?').run(upstream, repository, digest);
  }

  /** Repositories of an upstream known to hold a blob (mount sources when pushing upstream). */
  blobRepositories(upstream: string, digest: string, limit = 5): string[] {
    const rows = this.db
      .prepare('SELECT repository FROM repository_blobs WHERE upstream = ? AND digest = ? ORDER BY repository LIMIT ?')
      .all(upstream, digest, limit) as Array<{ repository: string }>;
    return rows.map((r) => r.repository);
  }

  /** Whether any repository still links the digest or holds it as a manifest. */
  isReferenced(digest: string): boolean {
    return (
      this.sql('SELECT 1 FROM repository_blobs WHERE digest = ? UNION ALL SELECT 1 FROM manifests WHERE digest = ? LIMIT 1').get(digest, digest) !== undefined
    );
  }

  /** Removes a manifest from one repository with the tags there that point at it; true when it was there. */
  deleteManifest(upstream: string, repository: string, digest: string): boolean {
    return this.db
      .transaction(() => {
        const removed = this.sql('DELETE FROM manifests WHERE upstream = ? AND repository = ? AND digest = ?').run(upstream, repository, digest).changes;
        this.sql('DELETE FROM tags WHERE upstream = ? AND repository = ? AND digest = ?').run(upstream, repository, digest);
        return removed > 0;
      })
      .immediate();
  }

  /** Manifests in a repository whose subject is the digest (the referrers API), one slice in digest order. */
  referrers(upstream: string, repository: string, subject: string, q: ReferrersQuery): ReferrerRecord[] {
    const typed = q.artifactType === undefined ? '' : 'AND artifact_type = ? ';
    const args = [upstream, repository, subject, q.after ?? '', ...(q.artifactType === undefined ? [] : [q.artifactType]), q.limit];
    return this.sql(
      `SELECT digest, media_type AS mediaType, size, artifact_type AS artifactType, CAST(annotations AS BLOB) AS annotations FROM manifests
      WHERE upstream = ? AND repository = ? AND subject = ? AND digest > ? ${typed}ORDER BY digest LIMIT ?`,
    ).all(...args) as ReferrerRecord[];
  }

  /** Records a verified manifest under a repository, with the blobs it references linked there too. */
  putManifest(upstream: string, repository: string, m: NewManifest): void {
    const tx = this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO manifests (upstream, repository, digest, media_type, size, subject, artifact_type, annotations, created_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        )
        .run(upstream, repository, m.digest, m.mediaType, m.size, m.subject ?? null, m.artifactType ?? null, m.annotations ?? null, this.now());
      const child = this.sql('INSERT OR IGNORE INTO manifest_children (digest, child) VALUES (?, ?)');
      const link = this.sql('INSERT OR IGNORE INTO repository_blobs (upstream, repository, digest) VALUES (?, ?, ?)');
      for (const c of m.children) {
        child.run(m.digest, c);
        link.run(upstream, repository, c);
      }
    });
    tx.immediate();
  }

  manifest(upstream: string, repository: string, digest: string): ManifestRecord | undefined {
    return this.db
      .prepare('SELECT digest, media_type AS mediaType, size FROM manifests WHERE upstream = ? AND repository = ? AND digest = ?')
      .get(upstream, repository, digest) as ManifestRecord | undefined;
  }

  setTag(upstream: string, repository: string, tag: string, digest: string): void {
    this.db
      .prepare(
        `INSERT INTO tags (upstream, repository, tag, digest, checked_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (upstream, repository, tag) DO UPDATE SET digest = excluded.digest, checked_at = excluded.checked_at`,
      )
      .run(upstream, repository, tag, digest, this.now());
  }

  /** Marks a tag as confirmed upstream now, without changing where it points. */
  touchTag(upstream: string, repository: string, tag: string): void {
    this.sql('UPDATE tags SET checked_at = ? WHERE upstream = ? AND repository = ? AND tag = ?').run(this.now(), upstream, repository, tag);
  }

  deleteTag(upstream: string, repository: string, tag: string): void {
    this.sql('DELETE FROM tags WHERE upstream = ? AND repository = ? AND tag = ?').run(upstream, repository, tag);
  }

  tag(upstream: string, repository: string, tag: string): TagRecord | undefined {
    return this.db
      .prepare('SELECT digest, checked_at AS checkedAt FROM tags WHERE upstream = ? AND repository = ? AND tag = ?')
      .get(upstream, repository, tag) as TagRecord | undefined;
  }

  /** Tags in byte order (SQLite's default BINARY collation), after `last`, at most `limit`. */
  tags(upstream: string, repository: string, last: string | undefined, limit: number): string[] {
    const rows = this.db
      .prepare('SELECT tag FROM tags WHERE upstream = ? AND repository = ? AND tag > ? ORDER BY tag LIMIT ?')
      .all(upstream, repository, last ?? '', limit) as Array<{ tag: string }>;
    return rows.map((r) => r.tag);
  }

  hasRepository(upstream: string, repository: string): boolean {
    return this.sql('SELECT 1 FROM manifests WHERE upstream = ? AND repository = ? LIMIT 1').get(upstream, repository) !== undefined;
  }

  repositories(upstream: string, last: string | undefined, limit: number): string[] {
    const rows = this.db
      .prepare('SELECT DISTINCT repository FROM manifests WHERE upstream = ? AND repository > ? ORDER BY repository LIMIT ?')
      .all(upstream, last ?? '', limit) as Array<{ repository: string }>;
    return rows.map((r) => r.repository);
  }

  /** Every (upstream, repository) holding at least one manifest, ordered by repository. */
  allRepositories(): Array<{ upstream: string; repository: string }> {
    return this.sql('SELECT DISTINCT upstream, repository FROM manifests ORDER BY repository').all() as Array<{ upstream: string; repository: string }>;
  }

  totalSize(): number {
    return (this.sql('SELECT COALESCE(SUM(size), 0) AS total FROM blobs').get() as { total: number }).total;
  }

  /** Everything eviction needs in one read: blobs, parent-child edges, and which upstreams hold each digest. */
  evictionView(): EvictionView {
    this.touches.flush();
    const blobs = this.sql('SELECT digest, size, last_access AS lastAccess, created_at AS storedAt, pinned FROM blobs').all() as Array<{
      digest: string;
      size: number;
      lastAccess: number;
      storedAt: number;
      pinned: number;
    }>;
    const edges = this.sql(
      'SELECT digest AS parent, child FROM manifest_children UNION ALL SELECT digest AS parent, signature AS child FROM signature_links',
    ).all() as Array<{
      parent: string;
      child: string;
    }>;
    const holders = this.sql('SELECT digest, upstream FROM repository_blobs UNION SELECT digest, upstream FROM manifests').all() as Array<{
      digest: string;
      upstream: string;
    }>;
    return { blobs: blobs.map((b) => ({ ...b, pinned: b.pinned !== 0 })), edges, holders };
  }

  /** Records that `signature` proved `digest`, replacing what proved it before. */
  linkSignature(digest: string, signature: string): void {
    this.db
      .transaction(() => {
        this.sql('DELETE FROM signature_links WHERE digest = ?').run(digest);
        this.sql('INSERT INTO signature_links (digest, signature) VALUES (?, ?)').run(digest, signature);
      })
      .immediate();
  }

  signatureOf(digest: string): string | undefined {
    return (this.sql('SELECT signature FROM signature_links WHERE digest = ?').get(digest) as { signature: string } | undefined)?.signature;
  }

  setPinned(digest: string, pinned: boolean): void {
    this.sql('UPDATE blobs SET pinned = ? WHERE digest = ?').run(pinned ? 1 : 0, digest);
  }

  /** Forgets a digest entirely: as a blob, as a manifest in any repository, and its links. Tags stay and refetch. */
  forget(digest: string): void {
    this.touches.drop(digest);
    this.db
      .transaction(() => {
        this.sql('DELETE FROM blobs WHERE digest = ?').run(digest);
        this.sql('DELETE FROM manifests WHERE digest = ?').run(digest);
        this.sql('DELETE FROM manifest_children WHERE digest = ?').run(digest);
        this.sql('DELETE FROM repository_blobs WHERE digest = ?').run(digest);
        this.sql('DELETE FROM signature_links WHERE digest = ? OR signature = ?').run(digest, digest);
      })
      .immediate();
  }

  /** Cached repositories with their tags, for `berth ls`. */
  listing(): ListingRow[] {
    this.touches.flush();
    return this.db
      .prepare(
        `SELECT m.upstream, m.repository, t.tag, m.digest, b.size, b.last_access AS lastAccess
        FROM manifests m LEFT JOIN tags t ON t.upstream = m.upstream AND t.repository = m.repository AND t.digest = m.digest
        LEFT JOIN blobs b ON b.digest = m.digest ORDER BY m.upstream, m.repository, t.tag`,
      )
      .all() as ListingRow[];
  }

  /** Sizes of a manifest's referenced blobs (one level), for image totals. */
  childSizes(digest: string): Array<{ child: string; size: number | null }> {
    return this.sql('SELECT c.child, b.size FROM manifest_children c LEFT JOIN blobs b ON b.digest = c.child WHERE c.digest = ?').all(digest) as Array<{
      child: string;
      size: number | null;
    }>;
  }

  /** True while the database is open and answers a query (readiness). */
  ping(): boolean {
    try {
      return this.db.open && this.sql('SELECT 1 AS one').get() !== undefined;
    } catch {
      return false;
    }
  }

  /** Bytes and count of stored blobs (manifests included). */
  usage(): { bytes: number; blobs: number } {
    return this.sql('SELECT COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS blobs FROM blobs').get() as { bytes: number; blobs: number };
  }

  /** Digests a manifest references (blobs and child manifests). */
  children(digest: string): string[] {
    return (this.sql('SELECT child FROM manifest_children WHERE digest = ?').all(digest) as Array<{ child: string }>).map((r) => r.child);
  }

  /** Manifests that reference a digest. */
  parents(digest: string): string[] {
    return (this.sql('SELECT digest FROM manifest_children WHERE child = ?').all(digest) as Array<{ digest: string }>).map((r) => r.digest);
  }

  isPinned(digest: string): boolean {
    return (this.sql('SELECT pinned FROM blobs WHERE digest = ?').get(digest) as { pinned: number } | undefined)?.pinned === 1;
  }

  /**
   * Images for the admin API: each tag, plus manifests no tag and no index in their repository
   * points at (pulled by digest). `q` filters on upstream/repository:tag@digest.
   */
  images(q: string, limit: number): ImageRow[] {
    this.touches.flush();
    return this.db
      .prepare(
        `SELECT m.upstream, m.repository, t.tag, m.digest, m.media_type AS mediaType, b.last_access AS lastPull, COALESCE(b.pinned, 0) AS pinned
        FROM manifests m
        LEFT JOIN tags t ON t.upstream = m.upstream AND t.repository = m.repository AND t.digest = m.digest
        LEFT JOIN blobs b ON b.digest = m.digest
        WHERE (t.tag IS NOT NULL OR NOT EXISTS (
          SELECT 1 FROM manifest_children c JOIN manifests p ON p.digest = c.digest AND p.upstream = m.upstream AND p.repository = m.repository
          WHERE c.child = m.digest))
        AND instr(m.upstream || '/' || m.repository || ':' || COALESCE(t.tag, '') || '@' || m.digest, ?) > 0
        ORDER BY m.upstream, m.repository, t.tag, m.digest LIMIT ?`,
      )
      .all(q, limit) as ImageRow[];
  }
}
