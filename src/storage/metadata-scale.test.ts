/**
 * @module storage/metadata-scale.test — every metadata statement on the pull, push and eviction paths
 * finds its rows through an index, at 20k and at 200k repository-blob links alike, so the cost of
 * one operation stays flat as the store grows (the plan is asserted, not a timing; timings are in
 * the bench).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MetadataStore } from './metadata.js';
import { StoreLayout } from './layout.js';

const d = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

/** `links` repository-blob links over links/50 repositories, with a manifest, a tag and children per repository. */
function fill(root: string, links: number): void {
  const db = new Database(new StoreLayout(root).metadataDb);
  // Test data only: nothing here needs to survive a crash.
  db.pragma('synchronous = OFF');
  const repos = links / 50;
  db.transaction(() => {
    const blob = db.prepare('INSERT OR IGNORE INTO blobs (digest, size, created_at, last_access) VALUES (?, 1, 1, 1)');
    const link = db.prepare('INSERT INTO repository_blobs (upstream, repository, digest) VALUES (?, ?, ?)');
    const manifest = db.prepare("INSERT INTO manifests (upstream, repository, digest, media_type, size, created_at) VALUES (?, ?, ?, 'm', 1, 1)");
    const child = db.prepare('INSERT OR IGNORE INTO manifest_children (digest, child) VALUES (?, ?)');
    const tag = db.prepare("INSERT INTO tags (upstream, repository, tag, digest, checked_at) VALUES (?, ?, 'latest', ?, 1)");
    for (let r = 0; r < repos; r++) {
      const upstream = `u${r % 4}`;
      const repo = `team${r % 97}/app${r}`;
      const m = d(10_000_000 + r);
      manifest.run(upstream, repo, m);
      tag.run(upstream, repo, m);
      for (let i = 0; i < 50; i++) {
        // Layers shared across repositories, as base images are.
        const b = d((r * 50 + i) % (links / 2));
        blob.run(b);
        link.run(upstream, repo, b);
        child.run(m, b);
      }
    }
  })();
  db.close();
}

/** Runs every operation once, recording the SQL text of each statement it prepares. */
function statementsOf(root: string): string[] {
  const store = new MetadataStore(root, () => 2);
  const db = (store as unknown as { db: Database.Database }).db;
  const seen = new Set<string>();
  const prepare = db.prepare.bind(db);
  (db as { prepare: (sql: string) => Database.Statement }).prepare = (sql: string) => {
    seen.add(sql);
    return prepare(sql);
  };
  const [u, r, b, m] = ['u1', 'team1/app1', d(77), d(10_000_001)];
  store.putBlob(b, 1);
  store.blob(b);
  store.touchBlob(b);
  store.linkBlob(u, r, b);
  store.isBlobLinked(u, r, b);
  store.blobRepositories(u, b);
  store.isReferenced(b);
  store.unlinkBlob(u, r, b);
  store.putManifest(u, r, { digest: m, mediaType: 'm', size: 1, children: [b] });
  store.manifest(u, r, m);
  store.referrers(u, r, m, { limit: 10 });
  store.setTag(u, r, 'v1', m);
  store.touchTag(u, r, 'v1');
  store.tag(u, r, 'v1');
  store.tags(u, r, undefined, 10);
  store.hasRepository(u, r);
  store.repositories(u, undefined, 10);
  store.children(m);
  store.parents(b);
  store.isPinned(b);
  store.setPinned(b, true);
  store.childSizes(m);
  store.deleteTag(u, r, 'v1');
  store.deleteManifest(u, r, m);
  store.forget(b);
  store.deleteBlob(b);
  store.close();
  return [...seen];
}

/** The query plan's lines; bound parameters do not change SQLite's choice of index. */
function plan(root: string, sql: string): string[] {
  const db = new Database(new StoreLayout(root).metadataDb, { readonly: true });
  try {
    const params = (sql.match(/\?/g) ?? []).map(() => 'x');
    return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((row) => row.detail);
  } finally {
    db.close();
  }
}

test('every keyed metadata statement searches an index at 20k and at 200k links, with the same plan', () => {
  const plans = new Map<number, Map<string, string[]>>();
  for (const links of [20_000, 200_000]) {
    const root = mkdtempSync(join(tmpdir(), 'berth-meta-scale-'));
    try {
      new MetadataStore(root, () => 1).close();
      fill(root, links);
      const count = new Database(new StoreLayout(root).metadataDb, { readonly: true });
      assert.equal((count.prepare('SELECT COUNT(*) AS n FROM repository_blobs').get() as { n: number }).n, links);
      count.close();
      const byStatement = new Map<string, string[]>();
      for (const sql of statementsOf(root)) {
        // Whole-table reads (totals, the eviction view) are meant to read every row.
        if (!/\bWHERE\b/.test(sql)) continue;
        const lines = plan(root, sql);
        byStatement.set(sql, lines);
        const text = sql.replace(/\s+/g, ' ');
        // A skip-scan (ANY(column)) walks every distinct prefix: a scan by another name.
        const scans = lines.filter((l) => /^SCAN |ANY\(/.test(l));
        assert.deepEqual(scans, [], `at ${links} links, ${text} scans a table: ${lines.join(' | ')}`);
        // One table: every column the statement fixes is one the index is searched by.
        if (!/\b(JOIN|UNION)\b/.test(text)) {
          for (const [, column] of text.slice(text.indexOf(' WHERE ')).matchAll(/\b(\w+) = \?/g)) {
            assert.ok(
              lines.some((l) => l.includes(`${column}=?`)),
              `at ${links} links, ${text} is not searched by ${column}: ${lines.join(' | ')}`,
            );
          }
        }
      }
      plans.set(links, byStatement);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  const small = plans.get(20_000)!;
  const large = plans.get(200_000)!;
  assert.ok(small.size >= 20, `statements checked: ${small.size}`);
  for (const [sql, lines] of small) assert.deepEqual(large.get(sql), lines, `same plan at both sizes: ${sql.replace(/\s+/g, ' ')}`);
});
