/** @module storage/metadata-schema — the metadata database's tables and indexes, as numbered migrations. */
import { addColumn, type Migration } from './migrations.js';

/**
 * Every row is keyed by upstream + repository + digest/tag, never by process identity, so the
 * record can later be shared by several replicas of one site. Upstream "" is the local registry.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS blobs (
  digest TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  last_access INTEGER NOT NULL,
  pinned INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS manifests (
  upstream TEXT NOT NULL,
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  subject TEXT,
  artifact_type TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (upstream, repository, digest)
);
CREATE INDEX IF NOT EXISTS manifests_subject ON manifests (upstream, repository, subject);
CREATE TABLE IF NOT EXISTS manifest_children (
  digest TEXT NOT NULL,
  child TEXT NOT NULL,
  PRIMARY KEY (digest, child)
);
CREATE TABLE IF NOT EXISTS tags (
  upstream TEXT NOT NULL,
  repository TEXT NOT NULL,
  tag TEXT NOT NULL,
  digest TEXT NOT NULL,
  checked_at INTEGER NOT NULL,
  PRIMARY KEY (upstream, repository, tag)
);
CREATE TABLE IF NOT EXISTS repository_blobs (
  upstream TEXT NOT NULL,
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  PRIMARY KEY (upstream, repository, digest)
);
`;

/** Version 1 is the schema of berth 0.1.0 (which recorded no version). */
export const METADATA_MIGRATIONS: readonly Migration[] = [
  (db) => db.exec(SCHEMA),
  // A referrer's annotations, so a referrers page reads rows and not manifests; the index walks
  // one subject's referrers in digest order, which is the page order (the old index is its prefix).
  (db) => {
    addColumn(db, 'manifests', 'annotations', 'TEXT');
    db.exec('CREATE INDEX IF NOT EXISTS manifests_referrers ON manifests (upstream, repository, subject, digest); DROP INDEX IF EXISTS manifests_subject;');
  },
  // Lookups by digest alone (eviction's forget, isReferenced, mount sources, parents of a child):
  // without these each one scanned its table, so an eviction pass slowed with the store's size.
  (db) =>
    db.exec(`CREATE INDEX IF NOT EXISTS repository_blobs_digest ON repository_blobs (digest, upstream, repository);
      CREATE INDEX IF NOT EXISTS manifests_digest ON manifests (digest);
      CREATE INDEX IF NOT EXISTS manifest_children_child ON manifest_children (child);
      CREATE INDEX IF NOT EXISTS tags_digest ON tags (upstream, repository, digest);`),
  // A verified manifest -> the signature that proved it (a .sig manifest or a referrers index):
  // the signature names its image only by tag or subject, so eviction learns the link from here.
  (db) =>
    db.exec(`CREATE TABLE IF NOT EXISTS signature_links (digest TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY (digest, signature));
      CREATE INDEX IF NOT EXISTS signature_links_signature ON signature_links (signature);`),
  // Bundles imported (berth import), for the dashboard and GET /api/v1/bundles.
  (db) =>
    db.exec(`CREATE TABLE IF NOT EXISTS bundle_imports (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, source TEXT NOT NULL,
      images TEXT NOT NULL, blobs_stored INTEGER NOT NULL, blobs_skipped INTEGER NOT NULL, blobs_refused INTEGER NOT NULL, problems TEXT NOT NULL)`),
];
