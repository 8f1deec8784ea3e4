/** @module storage/in-use — berth.lock: a running berth's pid and the blobs it has open, so `berth gc` beside it leaves them alone. */
import { readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { StoreLayout } from './layout.js';

interface LockBody {
  readonly pid: number;
  readonly updatedAt: number;
  readonly inUse: string[];
}

/**
 * Written by `berth serve` whenever the set of blobs it streams or fills changes; writes are
 * coalesced (one in flight, the newest state after it), so a burst of requests costs a few small
 * writes, never one per chunk. Removed on a clean stop; a stale file (dead pid) is ignored.
 */
export class InUseRecord {
  private writing: Promise<void> | undefined;
  private dirty = false;
  private closed = false;
  private readonly layout: StoreLayout;
  private inUse: string[] = [];

  constructor(
    root: string,
    private readonly now: () => number,
    private readonly pid = process.pid,
  ) {
    this.layout = new StoreLayout(root);
  }

  /** Something started or stopped being in use; `inUse` is the whole set now. */
  changed(inUse: string[]): void {
    if (this.closed) return;
    this.inUse = inUse;
    this.dirty = true;
    this.writing ??= this.flush().finally(() => {
      this.writing = undefined;
    });
  }

  async open(): Promise<void> {
    await this.write();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.writing?.catch(() => undefined);
    await rm(this.layout.lockFile, { force: true });
  }

  private async flush(): Promise<void> {
    while (this.dirty && !this.closed) {
      this.dirty = false;
      await this.write().catch(() => undefined);
    }
  }

  private async write(): Promise<void> {
    const body: LockBody = { pid: this.pid, updatedAt: this.now(), inUse: this.inUse };
    const temp = `${this.layout.lockFile}.${this.pid}`;
    await writeFile(temp, JSON.stringify(body));
    await rename(temp, this.layout.lockFile);
  }
}

/** What a live berth on this store has open; undefined when no berth runs there. */
export function readInUse(root: string, isAlive: (pid: number) => boolean = pidAlive): { pid: number; inUse: Set<string> } | undefined {
  let body: LockBody;
  try {
    body = JSON.parse(readFileSync(new StoreLayout(root).lockFile, 'utf8')) as LockBody;
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(body.pid) || !isAlive(body.pid)) return undefined;
  return { pid: body.pid, inUse: new Set(Array.isArray(body.inUse) ? body.inUse : []) };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
