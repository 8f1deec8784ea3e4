/** @module storage/held-tags-db — the local (SQLite, push.db) implementation of the held tags port. */
import type Database from 'better-sqlite3';
import type { HeldTags, HoldReason } from '../ports/held-tags.js';

/** A tag job is done or dropped: its tag stops being held, unless a newer push holds it. */
export function releaseReplicatingTag(db: Database.Database, job: { upstream: string; repository: string; tag: string | null; digest: string }): void {
  db.prepare("DELETE FROM held_tags WHERE upstream = ? AND repository = ? AND tag = ? AND digest = ? AND reason = 'replicating'").run(
    job.upstream,
    job.repository,
    job.tag,
    job.digest,
  );
}

export class SqliteHeldTags implements HeldTags {
  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number,
  ) {}

  async hold(upstream: string, repository: string, tag: string, digest: string, reason: HoldReason): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO held_tags (upstream, repository, tag, digest, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (upstream, repository, tag) DO UPDATE SET digest = excluded.digest, reason = excluded.reason, created_at = excluded.created_at`,
      )
      .run(upstream, repository, tag, digest, reason, this.now());
  }

  async release(upstream: string, repository: string, tag: string): Promise<void> {
    this.db.prepare('DELETE FROM held_tags WHERE upstream = ? AND repository = ? AND tag = ?').run(upstream, repository, tag);
  }

  async releaseTagsOf(upstream: string, repository: string, digest: string): Promise<void> {
    this.db.prepare('DELETE FROM held_tags WHERE upstream = ? AND repository = ? AND digest = ?').run(upstream, repository, digest);
  }

  async isHeld(upstream: string, repository: string, tag: string): Promise<boolean> {
    return this.db.prepare('SELECT 1 FROM held_tags WHERE upstream = ? AND repository = ? AND tag = ?').get(upstream, repository, tag) !== undefined;
  }

  async heldDigest(upstream: string, repository: string, tag: string): Promise<string | undefined> {
    const row = this.db.prepare('SELECT digest FROM held_tags WHERE upstream = ? AND repository = ? AND tag = ?').get(upstream, repository, tag) as
      { digest: string } | undefined;
    return row?.digest;
  }

  async heldTags(upstream: string, repository: string): Promise<string[]> {
    return (
      this.db.prepare('SELECT tag FROM held_tags WHERE upstream = ? AND repository = ? ORDER BY tag').all(upstream, repository) as Array<{ tag: string }>
    ).map((r) => r.tag);
  }
}
