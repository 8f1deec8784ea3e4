/** @module ui/problem — one banner that says why the data on screen may be missing or out of date. */
import type { ApiError } from './api.js';

export function Problem({ error }: { error: ApiError | undefined }) {
  if (!error) return null;
  const text =
    error.status === 0
      ? 'berth is not reachable; showing the last data loaded. Retrying…'
      : error.status === 401 || error.status === 403
        ? `The admin API refused the request (${error.status}): sign in with admin credentials.`
        : `The admin API answered: ${error.message}`;
  return (
    <div class="problem" role="alert">
      {text}
    </div>
  );
}
