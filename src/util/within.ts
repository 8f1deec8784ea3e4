/** @module util/within — an outcome awaited for a bounded time. */

/** `outcome`, or undefined once `ms` have passed first; the timer keeps no process alive. */
export async function within<T>(outcome: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => {
    timer = setTimeout(() => r(undefined), ms);
    timer.unref();
  });
  try {
    return await Promise.race([outcome, late]);
  } finally {
    clearTimeout(timer);
  }
}
