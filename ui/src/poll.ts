/** @module ui/poll — a hook that loads from the API now and then every few seconds while the view is shown. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from './api.js';

export interface Polled<T> {
  data: T | undefined;
  error: ApiError | undefined;
  /** Time of the last successful load. */
  at: number | undefined;
}

export function usePoll<T>(load: () => Promise<T>, intervalMs: number, deps: unknown[] = []): Polled<T> {
  const [state, setState] = useState<Polled<T>>({ data: undefined, error: undefined, at: undefined });
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const data = await load();
        if (!stopped) setState({ data, error: undefined, at: Date.now() });
      } catch (err) {
        const error = err instanceof ApiError ? err : new ApiError(String(err), 0);
        // Keep the last good data on screen; the banner says it is out of date.
        if (!stopped) setState((s) => ({ ...s, error }));
      }
      if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, deps);
  return state;
}
