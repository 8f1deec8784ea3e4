/** @module bench/cleanup — run-once teardown tasks so every process the bench starts is stopped, even on error or signal */

export type Task = () => Promise<void>;

/** Resolves after fn settles or ms pass, whichever is first; never rejects (teardown must go on). */
export async function bounded(fn: Task, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((r) => (timer = setTimeout(r, ms)));
  await Promise.race([fn().catch(() => undefined), timeout]);
  clearTimeout(timer);
}

export class Cleanup {
  private readonly tasks = new Map<number, { name: string; fn: Task }>();
  private next = 0;

  /** Registers a teardown; the returned function runs it now (once) and unregisters it. */
  add(name: string, fn: Task, ms = 20_000): Task {
    const id = this.next++;
    let done: Promise<void> | undefined;
    const once: Task = () => (done ??= bounded(fn, ms));
    this.tasks.set(id, { name, fn: once });
    return async () => {
      this.tasks.delete(id);
      await once();
    };
  }

  /** Runs what is left, newest first (caches before the registry they talk to). */
  async runAll(): Promise<void> {
    const left = [...this.tasks.entries()].sort((a, b) => b[0] - a[0]);
    this.tasks.clear();
    for (const [, t] of left) await t.fn();
  }
}
