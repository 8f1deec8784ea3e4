/** @module auth/bcrypt-pool — a small pool of worker threads that verify bcrypt hashes off the event loop, with a bounded queue. */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { tooManyRequests } from '../oci/error-catalogue.js';

export interface BcryptPoolOptions {
  /** Worker threads; default: one less than the cores (at least one, at most four). */
  readonly size?: number;
  /** Checks waiting for a worker; beyond that a check is refused (429) rather than queued without end. */
  readonly queued?: number;
}

interface Pending {
  readonly id: number;
  readonly password: string;
  readonly hash: string;
  resolve(ok: boolean): void;
  reject(err: Error): void;
}

interface Slot {
  readonly worker: Worker;
  job: Pending | undefined;
}

export class BcryptPool {
  private readonly size: number;
  private readonly maxQueued: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(opts: BcryptPoolOptions = {}) {
    this.size = opts.size ?? Math.min(4, Math.max(1, availableParallelism() - 1));
    this.maxQueued = opts.queued ?? 32;
  }

  /** Resolves whether the password matches the hash; never blocks the calling thread. */
  compare(password: string, hash: string): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error('password checks stopped'));
    const idle = this.idleSlot();
    if (!idle && this.queue.length >= this.maxQueued) {
      return Promise.reject(tooManyRequests('too many password checks in progress; retry in a moment', 1));
    }
    return new Promise<boolean>((resolve, reject) => {
      const job: Pending = { id: this.nextId++, password, hash, resolve, reject };
      if (idle) this.run(idle, job);
      else this.queue.push(job);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('password checks stopped'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }

  private idleSlot(): Slot | undefined {
    const free = this.slots.find((s) => s.job === undefined);
    if (free) return free;
    if (this.slots.length >= this.size) return undefined;
    const slot = this.spawn();
    this.slots.push(slot);
    return slot;
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./bcrypt-worker.js', import.meta.url));
    // Idle workers must not keep a finished process (or test) alive.
    worker.unref();
    const slot: Slot = { worker, job: undefined };
    worker.on('message', (msg: { id: number; ok: boolean }) => {
      const job = slot.job;
      if (!job || job.id !== msg.id) return;
      slot.job = undefined;
      job.resolve(msg.ok);
      this.next(slot);
      if (!slot.job) worker.unref();
    });
    const fail = (err: Error) => {
      // A dead worker is replaced on the next check; its job fails as "not verified".
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      slot.job?.reject(err);
      slot.job = undefined;
      const waiting = this.queue.shift();
      if (waiting && !this.closed) {
        const replacement = this.idleSlot();
        if (replacement) this.run(replacement, waiting);
        else this.queue.unshift(waiting);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.closed) fail(new Error(`password check worker exited (${code})`));
    });
    return slot;
  }

  private run(slot: Slot, job: Pending): void {
    slot.job = job;
    // Referenced while a check runs, so a caller awaiting it keeps the process alive.
    slot.worker.ref();
    slot.worker.postMessage({ id: job.id, password: job.password, hash: job.hash });
  }

  private next(slot: Slot): void {
    const job = this.queue.shift();
    if (job) this.run(slot, job);
  }
}
