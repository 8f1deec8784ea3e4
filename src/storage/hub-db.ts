/** @module storage/hub-db — the hub's state in SQLite (hub.db in its store): jobs, site parts, sites' reports, the job id sequence. */
import { mkdirSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { HeldSet, HubState, HubWrite, PartState, StoredJob, StoredPart, StoredSite } from '../ports/hub-state.js';
import { StoreLayout } from './layout.js';
import { openDatabase, type Migration } from './migrations.js';
import { HubDbWriter } from './hub-db-writer.js';

const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS hub_sequence (one INTEGER PRIMARY KEY CHECK (one = 1), next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hub_sites (
  name TEXT PRIMARY KEY,
  report TEXT NOT NULL,
  at INTEGER NOT NULL,
  first_seen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hub_jobs (
  id INTEGER PRIMARY KEY,
  image TEXT NOT NULL,
  digest TEXT,
  source TEXT NOT NULL,
  selector TEXT NOT NULL,
  url TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  finished_at INTEGER,
  error TEXT
);
CREATE TABLE IF NOT EXISTS hub_parts (
  job INTEGER NOT NULL,
  site TEXT NOT NULL,
  state TEXT NOT NULL,
  error TEXT,
  digest TEXT,
  bytes_fetched INTEGER NOT NULL,
  bytes_total INTEGER NOT NULL,
  finished_at INTEGER,
  PRIMARY KEY (job, site)
) WITHOUT ROWID;
`;

/** Each site's held blobs: one row per site, its digests packed 32 bytes each (bounded by MAX_HELD at the hub). */
const SCHEMA_V2 = `
CREATE TABLE IF NOT EXISTS hub_held (
  site TEXT PRIMARY KEY,
  hash TEXT NOT NULL,
  at INTEGER NOT NULL,
  count INTEGER NOT NULL,
  digests BLOB NOT NULL
);
`;

/**
 * A fan-out's sites as one JSON list per write (a job's later lists add to the earlier): a part
 * with no row in hub_parts is pending. A burst of 50 jobs to 2,000 sites writes 50 rows, not 100k,
 * and the results that come meanwhile do not wait behind them. Pending rows an older hub.db holds
 * still read as they are.
 */
const SCHEMA_V3 = `
CREATE TABLE IF NOT EXISTS hub_fanout (job INTEGER NOT NULL, sites TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS hub_fanout_job ON hub_fanout (job);
`;

export const HUB_MIGRATIONS: readonly Migration[] = [(db) => db.exec(SCHEMA_V1), (db) => db.exec(SCHEMA_V2), (db) => db.exec(SCHEMA_V3)];

/** NORMAL survives a killed process; a lost last poll after power loss is re-sent by its site. */
export function openHubDb(file: string): Database.Database {
  return openDatabase(file, 'hub.db', HUB_MIGRATIONS, 'NORMAL');
}

/** Applies a hub write to `db` in one transaction (statements prepared once: a hub writes many times a second). */
export function hubWriteApplier(db: Database.Database): (w: HubWrite) => void {
  const site = db.prepare(
    `INSERT INTO hub_sites (name, report, at, first_seen) VALUES (?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET report = excluded.report, at = excluded.at`,
  );
  const seen = db.prepare('UPDATE hub_sites SET at = ? WHERE name = ? AND at < ?');
  const job = db.prepare(
    `INSERT OR REPLACE INTO hub_jobs (id, image, digest, source, selector, url, created_at, finished_at, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const part = db.prepare(
    `INSERT OR REPLACE INTO hub_parts (job, site, state, error, digest, bytes_fetched, bytes_total, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const fanOut = db.prepare('INSERT INTO hub_fanout (job, sites) VALUES (?, ?)');
  const dropJob = db.prepare('DELETE FROM hub_jobs WHERE id = ?');
  const dropParts = db.prepare('DELETE FROM hub_parts WHERE job = ?');
  const dropFanOut = db.prepare('DELETE FROM hub_fanout WHERE job = ?');
  const apply = db.transaction((w: HubWrite) => {
    for (const s of w.sites ?? []) site.run(s.name, JSON.stringify(s.report), s.at, s.firstSeen);
    for (const s of w.seen ?? []) seen.run(s.at, s.name, s.at);
    for (const j of w.jobs ?? []) job.run(j.id, j.image, j.digest, j.source, j.selector, j.url, j.createdAt, j.finishedAt, j.error);
    for (const { job: id, sites } of w.pendingParts ?? []) fanOut.run(id, JSON.stringify(sites));
    for (const { job: id, part: p } of w.parts ?? []) part.run(id, p.site, p.state, p.error, p.digest, p.bytesFetched, p.bytesTotal, p.finishedAt);
    for (const id of w.deleteJobs ?? []) {
      dropJob.run(id);
      dropParts.run(id);
      dropFanOut.run(id);
    }
  });
  return (w) => apply.immediate(w);
}

/** A part as the load's JSON arrays carry it, in the table's column order. */
type PartRow = [string, PartState, string | null, string | null, number, number, number | null];

/**
 * A job's written parts, and a pending one for each site of its fan-out without a row; by site.
 * Both come sorted (rows by the query, lists as the hub's sorted site names): merged in one pass.
 */
function withPending(rows: StoredPart[], fanOut: readonly string[] | undefined): StoredPart[] {
  if (!fanOut) return rows;
  const list = isSorted(fanOut, (s) => s) ? fanOut : [...fanOut].sort();
  if (!isSorted(rows, (p) => p.site)) rows.sort((a, b) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0));
  const out: StoredPart[] = [];
  let i = 0;
  for (const site of list) {
    while (i < rows.length && rows[i]!.site < site) out.push(rows[i++]!);
    if (i < rows.length && rows[i]!.site === site) out.push(rows[i++]!);
    else if (out[out.length - 1]?.site !== site)
      out.push({ site, state: 'pending', error: null, digest: null, bytesFetched: 0, bytesTotal: 0, finishedAt: null });
  }
  while (i < rows.length) out.push(rows[i++]!);
  return out;
}

function isSorted<T>(xs: readonly T[], key: (x: T) => string): boolean {
  for (let i = 1; i < xs.length; i++) if (key(xs[i - 1]!) > key(xs[i]!)) return false;
  return true;
}

function partOf([site, state, error, digest, bytesFetched, bytesTotal, finishedAt]: PartRow): StoredPart {
  return { site, state, error, digest, bytesFetched, bytesTotal, finishedAt };
}

/** Job ids reserved at a time. */
const JOB_ID_BLOCK = 1_000;

export class SqliteHubState implements HubState {
  private readonly db: Database.Database;

  private readonly file: string;
  /** Jobs, parts and reports are written on a worker thread (storage/hub-db-writer.ts), started at the first write. */
  private writer: HubDbWriter | undefined;
  /** The block of job ids reserved and not handed out yet. */
  private ids = { next: 0, end: 0 };

  constructor(root: string) {
    mkdirSync(root, { recursive: true });
    this.file = new StoreLayout(root).hubDb;
    this.db = openHubDb(this.file);
  }

  /**
   * Ids are reserved in blocks: one short transaction on this connection per JOB_ID_BLOCK jobs,
   * not one per job (a transaction here waits for the writer thread's commit with the event loop
   * stopped), the first at load while the writer is idle. A restart starts a new block, so ids
   * skip the rest of the last one but never repeat.
   */
  async nextJobId(floor: number): Promise<number> {
    if (this.ids.next >= this.ids.end) this.reserveIds(floor);
    return this.ids.next++;
  }

  /** The next block of ids, from the stored sequence (or `floor` for a new one). */
  private reserveIds(floor: number | undefined): void {
    const start = this.db
      .transaction(() => {
        const row = this.db.prepare('SELECT next FROM hub_sequence WHERE one = 1').get() as { next: number } | undefined;
        const id = row ? row.next : floor;
        if (id !== undefined)
          this.db.prepare('INSERT INTO hub_sequence (one, next) VALUES (1, ?) ON CONFLICT (one) DO UPDATE SET next = excluded.next').run(id + JOB_ID_BLOCK);
        return id;
      })
      .immediate();
    if (start !== undefined) this.ids = { next: start, end: start + JOB_ID_BLOCK };
  }

  async write(w: HubWrite): Promise<void> {
    await (this.writer ??= new HubDbWriter(this.file)).write(w);
  }

  async load(): Promise<{ sites: StoredSite[]; jobs: Array<StoredJob & { parts: StoredPart[] }> }> {
    // A hub that made jobs before reserves its first block now (a new sequence waits for its floor).
    if (this.ids.next >= this.ids.end) this.reserveIds(undefined);
    const sites = (
      this.db.prepare('SELECT name, report, at, first_seen AS firstSeen FROM hub_sites ORDER BY name').all() as Array<{
        name: string;
        report: string;
        at: number;
        firstSeen: number;
      }>
    ).map((r) => ({ ...r, report: JSON.parse(r.report) as Record<string, unknown> }));
    const jobs = this.db
      .prepare('SELECT id, image, digest, source, selector, url, created_at AS createdAt, finished_at AS finishedAt, error FROM hub_jobs ORDER BY id')
      .all() as StoredJob[];
    // Each job's parts as one JSON array built by SQLite: a restart reads 100k parts in about half
    // the time of a row each (the hub answers nothing until they are loaded).
    const parts = new Map<number, StoredPart[]>();
    const grouped = this.db
      .prepare(
        `SELECT job, json_group_array(json_array(site, state, error, digest, bytes_fetched, bytes_total, finished_at))
        FROM (SELECT * FROM hub_parts ORDER BY job, site) GROUP BY job`,
      )
      .raw()
      .all() as Array<[number, string]>;
    for (const [job, text] of grouped) parts.set(job, (JSON.parse(text) as PartRow[]).map(partOf));
    const fanOuts = new Map<number, string[]>();
    for (const [job, text] of this.db.prepare('SELECT job, sites FROM hub_fanout ORDER BY rowid').raw().all() as Array<[number, string]>) {
      const list = fanOuts.get(job);
      if (list) list.push(...(JSON.parse(text) as string[]));
      else fanOuts.set(job, JSON.parse(text) as string[]);
    }
    return { sites, jobs: jobs.map((j) => ({ ...j, parts: withPending(parts.get(j.id) ?? [], fanOuts.get(j.id)) })) };
  }

  async heldHash(site: string): Promise<string | undefined> {
    return (this.db.prepare('SELECT hash FROM hub_held WHERE site = ?').get(site) as { hash: string } | undefined)?.hash;
  }

  async putHeld(site: string, set: HeldSet): Promise<void> {
    this.db
      .prepare('INSERT OR REPLACE INTO hub_held (site, hash, at, count, digests) VALUES (?, ?, ?, ?, ?)')
      .run(site, set.hash, set.at, set.count, set.digests);
  }

  async held(site: string): Promise<HeldSet | undefined> {
    return this.db.prepare('SELECT hash, at, count, digests FROM hub_held WHERE site = ?').get(site) as HeldSet | undefined;
  }

  async close(): Promise<void> {
    await this.writer?.close();
    if (this.db.open) this.db.close();
  }
}
