/**
 * @module storage/hub-db-writer — the hub's writes to hub.db go to a worker thread with its own
 * connection: a commit, and the WAL checkpoint that comes with some, never holds up the polls the
 * hub answers meanwhile. A write resolves once committed, as before.
 */
import { Worker } from 'node:worker_threads';
import type { HubWrite } from '../ports/hub-state.js';

interface Waiting {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

export class HubDbWriter {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  /** Once closing, the worker stays referenced until it exited. */
  private closing = false;

  constructor(private readonly file: string) {}

  write(w: HubWrite): Promise<void> {
    return this.send({ write: w });
  }

  /** Waits for the writes sent, then closes the worker's connection. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    this.closing = true;
    await this.send({ close: true }).catch(() => undefined);
    await exited;
  }

  private send(msg: { write: HubWrite } | { close: true }): Promise<void> {
    const worker = (this.worker ??= this.spawn());
    const id = this.nextId++;
    // Referenced only while a write is out: an idle writer keeps no process (or test) alive.
    worker.ref();
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, ...msg });
    });
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./hub-db-worker.js', import.meta.url), { workerData: { file: this.file } });
    worker.on('message', (msg: { id: number; error?: string; code?: string }) => {
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      if (this.waiting.size === 0 && !this.closing) worker.unref();
      if (!w) return;
      if (msg.error === undefined) w.resolve();
      else w.reject(Object.assign(new Error(msg.error), msg.code ? { code: msg.code } : {}));
    });
    const fail = (err: Error) => {
      // The next write starts a new worker; those in flight are refused (their requests are not acknowledged).
      if (this.worker === worker) this.worker = undefined;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the hub.db writer stopped (exit code ${code})`)));
    return worker;
  }
}
