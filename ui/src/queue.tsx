/** @module ui/queue — the push queue (write-behind replication): what waits to reach the central registry. */
import { api } from './api.js';
import { duration, shortDigest } from './format.js';
import { usePoll } from './poll.js';
import { Problem } from './problem.js';

const REFRESH_MS = 5_000;

export function Queue() {
  const queue = usePoll(api.queue, REFRESH_MS);
  // A berth without a write-behind upstream has no queue to show.
  if (queue.error?.status === 404) return <p class="muted">This berth has no push queue: no upstream uses pushmode write-behind.</p>;
  const items = queue.data ?? [];
  return (
    <section>
      <Problem error={queue.error} />
      <p class="muted" data-testid="queue-count">
        {items.length} item{items.length === 1 ? '' : 's'} waiting
      </p>
      {items.length === 0 && <p class="muted small">Pushes to write-behind upstreams wait here until the central registry has accepted them.</p>}
      {items.length > 0 && (
        <table class="table" data-testid="queue">
          <thead>
            <tr>
              <th>Kind</th>
              <th>Repository</th>
              <th>Tag / digest</th>
              <th>State</th>
              <th>Attempts</th>
              <th>Age</th>
              <th>Last error</th>
            </tr>
          </thead>
          <tbody>
            {items.map((q) => (
              <tr key={String(q.id)}>
                <td>{q.kind}</td>
                <td class="mono">{q.repository}</td>
                <td class="mono" title={q.digest ?? ''}>
                  {q.tag ?? shortDigest(q.digest)}
                </td>
                <td>
                  <span class={`badge ${q.lastError ? 'badge-bad' : 'badge-busy'}`}>{q.state}</span>
                </td>
                <td class="num">{q.attempts}</td>
                <td>{duration(q.ageSeconds)}</td>
                <td class="small error-text">{q.lastError ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
