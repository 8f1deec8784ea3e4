/** @module util/unref-timer — a cancellable timer that keeps no process alive, and its type, so timed work can be driven by a fake clock in tests. */

/** Runs `fn` after `ms`; returns what cancels it. */
export type SetTimer = (fn: () => void, ms: number) => () => void;

/** A timer that does not keep the process alive: what it would have run is not worth waiting for at shutdown. */
export const unrefTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};
