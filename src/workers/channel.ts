/** @module workers/channel — a worker's end of the IPC channel to the primary: calls with replies, notes, and what the primary pushes. */
import type { UploadBound } from '../ports/upload-sessions.js';
import type { RangeCoordinator, RangePart } from '../ports/fills.js';
import type { WorkerClaim } from './fill-table.js';
import { isToWorker, type Gathered, type SharedTopic, type ToPrimary } from './worker-protocol.js';

/** Messages kept per topic for a handler not set yet (a worker starting amid an outage or a flood). */
const EARLY_SHARED_MAX = 256;
/** Outcomes of range fetches kept for requests of this worker still to ask (each is asked within moments of its notice). */
const RANGE_OUTCOMES_MAX = 256;

/** The process's IPC endpoint (process in a cluster worker; a fake in unit tests). */
export interface IpcPort {
  send(message: unknown): unknown;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

type FillListener = (kind: 'ready' | 'end', size: number | null) => void;

/** Distributes `Omit` over a union, so each call's own fields stay required. */
type Without<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class WorkerChannel {
  private nextId = 1;
  private readonly pending = new Map<number, (value: unknown) => void>();
  private readonly fillListeners = new Map<string, Set<FillListener>>();
  private readonly providers = new Map<Gathered, () => unknown>();
  private readonly listener = (m: unknown) => this.receive(m);
  private closed = false;
  /** The lead worker's private admin port, once it told the primary. */
  adminPort: number | undefined;
  private adminWaiters: Array<() => void> = [];
  onReload: (() => void) | undefined;
  private readonly shared = new Map<SharedTopic, (data: unknown) => void>();
  /** Outcomes of other workers' range fetches this worker waits for, kept until asked (a notice may come before the wait). */
  private readonly rangeOutcomes = new Map<number, boolean>();
  private readonly rangeWaiters = new Map<number, Array<(ok: boolean) => void>>();
  /** Shared before this worker's handler was set (it was still starting): delivered when it is. */
  private readonly early = new Map<SharedTopic, unknown[]>();

  constructor(
    private readonly port: IpcPort,
    /** This worker's slot: 0 is the lead (singleton duties, the admin state). */
    readonly slot: number,
    readonly count: number,
  ) {
    port.on('message', this.listener);
  }

  get lead(): boolean {
    return this.slot === 0;
  }

  claim(digest: string, tempPath: string): Promise<WorkerClaim> {
    return this.call({ op: 'claim', digest, tempPath }) as Promise<WorkerClaim>;
  }

  /** The group's per-client bound on open uploads (see push/upload-bound). */
  uploadBound(): UploadBound {
    return {
      open: (client, upload) => this.call({ op: 'uploadOpen', client, upload }) as Promise<boolean>,
      close: (upload) => this.note({ op: 'uploadClosed', upload }),
    };
  }

  /** The lead's admin port, waiting up to `ms` for it (the lead may still be starting, or be replaced). */
  async leadAdminPort(ms: number): Promise<number | undefined> {
    if (this.adminPort !== undefined) return this.adminPort;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      const waiters = this.adminWaiters;
      function done() {
        clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      waiters.push(done);
    });
    return this.adminPort;
  }

  /** Range fetches shared with the other workers through the primary (workers/range-table). */
  readonly ranges: RangeCoordinator = {
    claim: (digest, start, end) => this.call({ op: 'rangeClaim', digest, start, end }) as Promise<RangePart[]>,
    done: (digest, flight, ok) => this.note({ op: 'rangeDone', digest, flight, ok }),
    under: (digest, start, end) => this.call({ op: 'rangeUnder', digest, start, end }) as Promise<RangePart[]>,
    wait: (flight) => {
      const known = this.rangeOutcomes.get(flight);
      if (known !== undefined) return Promise.resolve(known);
      return new Promise((resolve) => this.rangeWaiters.set(flight, [...(this.rangeWaiters.get(flight) ?? []), resolve]));
    },
  };

  claimTag(key: string): Promise<boolean> {
    return this.call({ op: 'claimTag', key }) as Promise<boolean>;
  }

  filling(digest: string): Promise<boolean> {
    return this.call({ op: 'filling', digest }) as Promise<boolean>;
  }

  /** Resolves when the group's budget of `upstream` granted `n` bytes at this priority. */
  async budget(upstream: string, n: number, background: boolean): Promise<void> {
    await this.call({ op: 'budget', upstream, n, background });
  }

  /** Every live worker's answer (this one's included) for `what`. */
  gather(what: Gathered): Promise<unknown[]> {
    return this.call({ op: 'gather', what }) as Promise<unknown[]>;
  }

  note(message: Without<Extract<ToPrimary, { berth: 'note' }>, 'berth'>): void {
    this.send({ berth: 'note', ...message });
  }

  /** Tells the other workers (they receive it through onShared). */
  share(topic: SharedTopic, data: unknown): void {
    this.note({ op: 'share', topic, data });
  }

  /** What the other workers shared on `topic`. */
  onShared(topic: SharedTopic, handler: (data: unknown) => void): void {
    this.shared.set(topic, handler);
    const early = this.early.get(topic) ?? [];
    this.early.delete(topic);
    for (const data of early) handler(data);
  }

  /** What this worker answers when the primary collects `what` from every worker. */
  provide(what: Gathered, provider: () => unknown): void {
    this.providers.set(what, provider);
  }

  /** Notices about a fill another worker owns; returns the unsubscribe. */
  onFill(digest: string, listener: FillListener): () => void {
    let set = this.fillListeners.get(digest);
    if (!set) this.fillListeners.set(digest, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.fillListeners.get(digest) === set) this.fillListeners.delete(digest);
    };
  }

  close(): void {
    this.closed = true;
    this.port.off('message', this.listener);
  }

  private call(body: Without<Extract<ToPrimary, { berth: 'call' }>, 'berth' | 'id'>): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the worker channel is closed'));
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.send({ berth: 'call', id, ...body });
    });
  }

  private send(m: ToPrimary): void {
    try {
      this.port.send(m);
    } catch {
      // The primary is gone: this worker is about to exit with it.
    }
  }

  private receive(m: unknown): void {
    if (!isToWorker(m)) return;
    const msg = m;
    switch (msg.berth) {
      case 'reply': {
        const resolve = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        resolve?.(msg.value);
        return;
      }
      case 'fill':
        for (const l of [...(this.fillListeners.get(msg.digest) ?? [])]) l(msg.kind, msg.size);
        return;
      case 'range': {
        // Kept for requests that ask after the notice came (a few hundred: flights end in order).
        this.rangeOutcomes.set(msg.flight, msg.ok);
        if (this.rangeOutcomes.size > RANGE_OUTCOMES_MAX) this.rangeOutcomes.delete(this.rangeOutcomes.keys().next().value!);
        for (const w of this.rangeWaiters.get(msg.flight) ?? []) w(msg.ok);
        this.rangeWaiters.delete(msg.flight);
        return;
      }
      case 'collect':
        // The primary waits for every worker's answer: one that failed still answers.
        this.collect(msg.id, msg.what).catch(() => this.send({ berth: 'collected', id: msg.id, value: null }));
        return;
      case 'admin':
        this.adminPort = msg.port;
        for (const w of this.adminWaiters.splice(0)) w();
        return;
      case 'reload':
        this.onReload?.();
        return;
      case 'shared': {
        const handler = this.shared.get(msg.topic);
        if (handler) handler(msg.data);
        else {
          // An outage another worker saw while this one started must still count here.
          const early = this.early.get(msg.topic) ?? [];
          if (early.length < EARLY_SHARED_MAX) early.push(msg.data);
          this.early.set(msg.topic, early);
        }
        return;
      }
    }
  }

  private async collect(id: number, what: Gathered): Promise<void> {
    let value: unknown = null;
    try {
      value = (await this.providers.get(what)?.()) ?? null;
    } catch {
      value = null;
    }
    this.send({ berth: 'collected', id, value });
  }
}
