/** @module ui/sites — the fleet hub's sites: each site's last report (up or stale) and the pre-heat jobs sent to them. */
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { ago, bytes, count } from './format.js';
import { usePoll } from './poll.js';
import { Problem } from './problem.js';

const REFRESH_MS = 5_000;
/** The hub token typed here is kept for this tab only. */
const TOKEN_KEY = 'berth.hubToken';

export function Sites() {
  const [token, setToken] = useState<string>(() => sessionStorage.getItem(TOKEN_KEY) ?? '');
  const [draft, setDraft] = useState('');
  // Paths of the pages before the one shown (its own last): Previous pops, Next pushes the Link's.
  const [pages, setPages] = useState<Array<string | undefined>>([undefined]);
  const page = pages[pages.length - 1];
  // The page and the counts in one load, so they never disagree on screen.
  const sites = usePoll(async () => Promise.all([api.sites(token, page), api.sitesSummary(token)]), REFRESH_MS, [token, page]);
  const jobs = usePoll(() => api.fleetJobs(token), REFRESH_MS, [token]);
  if (sites.error?.status === 404)
    return (
      <p class="muted">
        This berth is not a fleet hub: add a <code>hub:</code> section to its config to have sites report here.
      </p>
    );
  if (sites.error?.status === 401) {
    return (
      <form
        data-testid="hub-token"
        onSubmit={(e) => {
          e.preventDefault();
          sessionStorage.setItem(TOKEN_KEY, draft);
          setToken(draft);
        }}
      >
        <p class="muted">{token ? 'The token was not accepted.' : "The sites list needs the hub token (hub.token in the hub's config)."}</p>
        <label>
          Hub token <input type="password" name="token" value={draft} onInput={(e) => setDraft((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Show sites</button>
      </form>
    );
  }
  const list = sites.data?.[0].items ?? [];
  const next = sites.data?.[0].next;
  const summary = sites.data?.[1] ?? { total: 0, up: 0, stale: 0 };
  return (
    <section>
      <Problem error={sites.error} />
      <p class="muted" data-testid="sites-count">
        {summary.total} site{summary.total === 1 ? '' : 's'}, {summary.up} up, {summary.stale} stale
      </p>
      {(pages.length > 1 || next !== undefined) && (
        <p class="small" data-testid="sites-pages">
          <button type="button" disabled={pages.length === 1} onClick={() => setPages(pages.slice(0, -1))}>
            Previous
          </button>{' '}
          page {pages.length}{' '}
          <button type="button" disabled={next === undefined} onClick={() => next !== undefined && setPages([...pages, next])}>
            Next
          </button>
        </p>
      )}
      {list.length > 0 && (
        <table class="table" data-testid="sites">
          <thead>
            <tr>
              <th>Site</th>
              <th>State</th>
              <th>Last report</th>
              <th>Version</th>
              <th>Store</th>
              <th>Images</th>
              <th>WAN bytes</th>
              <th>Upstreams</th>
              <th>Recent errors</th>
            </tr>
          </thead>
          <tbody>
            {list.map((s) => (
              <tr key={s.name} data-site={s.name}>
                <td class="mono">{s.name}</td>
                <td>
                  <span class={`badge ${s.state === 'up' ? 'badge-ok' : 'badge-bad'}`}>{s.state}</span>
                </td>
                <td title={s.lastReport}>{ago(s.lastReport)}</td>
                <td>{s.version}</td>
                <td class="num">
                  {bytes(s.store.bytes)}
                  {s.store.limit ? ` / ${bytes(s.store.limit)}` : ''}
                </td>
                <td class="num">{count(s.images)}</td>
                <td class="num">{bytes(Object.values(s.wanBytes).reduce((n, b) => n + b, 0))}</td>
                <td class="small">{s.upstreams.map((u) => `${u.name}: ${u.state}`).join(', ')}</td>
                <td class="small error-text">{s.errors.slice(0, 2).join('; ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Pre-heat jobs</h2>
      {(jobs.data ?? []).length === 0 && <p class="muted small">Jobs from Harbor preheat policies and push events appear here.</p>}
      {(jobs.data ?? []).length > 0 && (
        <table class="table" data-testid="fleet-jobs">
          <thead>
            <tr>
              <th>Job</th>
              <th>Image</th>
              <th>From</th>
              <th>State</th>
              <th>Sites</th>
            </tr>
          </thead>
          <tbody>
            {(jobs.data ?? []).slice(0, 50).map((j) => (
              <tr key={String(j.id)}>
                <td class="mono">{j.id}</td>
                <td class="mono">{j.image}</td>
                <td>{j.source}</td>
                <td>
                  <span class={`badge ${j.state === 'SUCCESS' ? 'badge-ok' : j.state === 'FAILURE' ? 'badge-bad' : 'badge-busy'}`}>{j.state}</span>
                </td>
                <td class="small">{j.error ?? j.sites.map((p) => `${p.site}: ${p.state}${p.error ? ` (${p.error})` : ''}`).join('; ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
