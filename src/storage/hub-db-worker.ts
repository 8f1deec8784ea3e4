/** @module storage/hub-db-worker — the worker thread that applies the hub's writes to hub.db (storage/hub-db-writer.ts starts it). */
import { parentPort, workerData } from 'node:worker_threads';
import type { HubWrite } from '../ports/hub-state.js';
import { hubWriteApplier, openHubDb } from './hub-db.js';

type Message = { readonly id: number; readonly write: HubWrite } | { readonly id: number; readonly close: true };

const db = openHubDb((workerData as { file: string }).file);
const apply = hubWriteApplier(db);

parentPort?.on('message', (msg: Message) => {
  if ('close' in msg) {
    db.close();
    parentPort?.postMessage({ id: msg.id });
    parentPort?.close();
    return;
  }
  try {
    apply(msg.write);
    parentPort?.postMessage({ id: msg.id });
  } catch (err) {
    parentPort?.postMessage({ id: msg.id, error: (err as Error).message, code: (err as { code?: string }).code });
  }
});
