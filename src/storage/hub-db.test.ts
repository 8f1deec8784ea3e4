/** @module storage/hub-db.test — the SQLite hub state through the hub state contract. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hubStateContract } from '../ports/contract/hub-state-contract.js';
import { SqliteHubState } from './hub-db.js';

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
