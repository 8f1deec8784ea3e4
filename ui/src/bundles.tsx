/** @module ui/bundles — bundles imported into this berth (`berth import`): when, from where, which images, and what happened to their blobs. */
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { ago } from './format.js';
import { usePoll } from './poll.js';
import { Problem } from './problem.js';

const REFRESH_MS = 10_000;
const PAGE = 50;

export function Bundles() {
  const [offset, setOffset] = useState(0);
  const page = usePoll(() => api.bundles(offset), REFRESH_MS, [offset]);
  const items = page.data?.items ?? [];
  const total = page.data?.total ?? 0;
  return (
    <section>
      <Problem error={page.error} />
      <p class="muted" data-testid="bundles-count">
        {total} bundle{total === 1 ? '' : 's'} imported
      </p>
      {total === 0 && <p class="muted small">Bundles loaded with berth import (for sites without a link) are listed here.</p>}
      {items.length > 0 && (
        <table class="table" data-testid="bundles">
          <thead>
            <tr>
              <th>When</th>
              <th>Source</th>
              <th>Images</th>
              <th>Blobs stored</th>
              <th>Already there</th>
              <th>Refused</th>
            </tr>
          </thead>
          <tbody>
            {items.map((b) => (
              <tr key={String(b.id)}>
                <td title={new Date(b.at).toISOString()}>{ago(b.at)}</td>
                <td class="mono">{b.source}</td>
                <td class="mono small">
                  {b.images.join(', ') || '—'}
                  {b.problems.length > 0 && <div class="error-text">{b.problems.length} not imported</div>}
                </td>
                <td class="num">{b.blobsStored}</td>
                <td class="num">{b.blobsSkipped}</td>
                <td class={`num${b.blobsRefused > 0 ? ' error-text' : ''}`}>{b.blobsRefused}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {total > PAGE && (
        <p>
          <button disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
            Newer
          </button>{' '}
          <button disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>
            Older
          </button>
        </p>
      )}
    </section>
  );
}
