/** @module util/within — a yes/no outcome awaited for a bounded time. */

/** `outcome`, or false once `ms` have passed first; the timer keeps no process alive. */
export async function within(outcome: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([outcome, late]);
  } finally {
    clearTimeout(timer);
  }
}
