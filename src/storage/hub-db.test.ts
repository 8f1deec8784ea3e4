/** @module storage/hub-db.test — the SQLite hub state through the hub state contract; a hub.db from before fan-out lists still loads. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hubStateContract } from '../ports/contract/hub-state-contract.js';
import { HUB_MIGRATIONS, SqliteHubState } from './hub-db.js';
import { StoreLayout } from './layout.js';
import { openDatabase } from './migrations.js';

hubStateContract('sqlite', async () => {
  const root = mkdtempSync(join(tmpdir(), 'berth-hub-state-'));
  const opened = [new SqliteHubState(root)];
  return {
    state: opened[0]!,
    // The old handle stays open, as a killed process's would until the kernel drops it.
    reopen: async () => {
      const next = new SqliteHubState(root);
      opened.push(next);
      return next;
    },
    close: async () => {
      for (const s of opened) await s.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
});

test('a hub.db whose fan-outs are pending rows (before hub_fanout) loads them as they are, with a later fan-out list beside', async () => {
  const root = mkdtempSync(join(tmpdir(), 'berth-hub-v2-'));
  try {
    const old = openDatabase(new StoreLayout(root).hubDb, 'hub.db', HUB_MIGRATIONS.slice(0, 2), 'NORMAL');
    old.exec(
      `INSERT INTO hub_jobs (id, image, digest, source, selector, url, created_at, finished_at, error) VALUES (1, 'a/b:c', NULL, 'api', '', 'a/b:c', 1, NULL, NULL)`,
    );
    old.exec(`INSERT INTO hub_parts VALUES (1, 's-2', 'pending', NULL, NULL, 0, 0, NULL), (1, 's-1', 'success', NULL, 'sha256:x', 3, 3, 5)`);
    old.close();
    const state = new SqliteHubState(root);
    await state.write({ pendingParts: [{ job: 1, sites: ['s-3', 's-1'] }] });
    const [job] = (await state.load()).jobs;
    assert.deepEqual(
      job!.parts.map((p) => [p.site, p.state]),
      [
        ['s-1', 'success'],
        ['s-2', 'pending'],
        ['s-3', 'pending'],
      ],
    );
    await state.write({ deleteJobs: [1] });
    assert.deepEqual((await state.load()).jobs, []);
    await state.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
