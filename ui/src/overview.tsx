/** @module ui/overview — the overview page: hit ratio, WAN bytes saved, store usage, upstream states, charts. */
import { useMemo } from 'preact/hooks';
import { api, type History, type Stats, type UpstreamState } from './api.js';
import { Chart } from './chart.js';
import { ago, bytes, count, duration, percent, toDate } from './format.js';
import { usePoll } from './poll.js';
import { Problem } from './problem.js';

const REFRESH_MS = 5_000;

function Card({ label, value, detail, testid }: { label: string; value: string; detail?: string; testid: string }) {
  return (
    <div class="card" data-testid={testid}>
      <div class="card-label">{label}</div>
      <div class="card-value">{value}</div>
      {detail && <div class="card-detail">{detail}</div>}
    </div>
  );
}

function StoreUsage({ store }: { store: Stats['store'] }) {
  const bounded = store.maxsize > 0;
  const ratio = bounded ? Math.min(store.bytes / store.maxsize, 1) : 0;
  return (
    <div class="card" data-testid="store">
      <div class="card-label">Store</div>
      <div class="card-value">{bytes(store.bytes)}</div>
      <div class={`meter ${ratio > 0.9 ? 'meter-high' : ''}`} role="meter" aria-valuenow={ratio} aria-valuemin={0} aria-valuemax={1}>
        <div style={{ width: `${(ratio * 100).toFixed(1)}%` }} />
      </div>
      <div class="card-detail">
        {bounded ? `${percent(store.bytes / store.maxsize)} of ${bytes(store.maxsize)} limit` : 'no size limit (storage.maxsize)'} · {count(store.blobs)} blobs
      </div>
    </div>
  );
}

function Upstreams({ list }: { list: UpstreamState[] }) {
  if (list.length === 0) return <p class="muted">No upstreams: berth runs as a plain registry.</p>;
  return (
    <table class="table" data-testid="upstreams">
      <thead>
        <tr>
          <th>Upstream</th>
          <th>State</th>
          <th>Since</th>
          <th>Failures</th>
          <th>Last error</th>
        </tr>
      </thead>
      <tbody>
        {list.map((u) => (
          <tr key={u.name}>
            <td>
              <strong>{u.name}</strong>
              <div class="muted small">{u.remoteurl}</div>
            </td>
            <td>
              <span class={`badge badge-${u.state === 'up' ? 'ok' : 'bad'}`}>{u.state}</span>
            </td>
            <td>{ago(u.since)}</td>
            <td>{count(u.consecutiveFailures ?? 0)}</td>
            <td class="small">{u.lastError ?? ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** History points are per-interval counts; the charts show them as rates per second. */
function useSeries(history: History | undefined) {
  return useMemo(() => {
    const points = history?.points ?? [];
    const step = history?.intervalSeconds || 10;
    const times = points.map((p) => (toDate(p.t)?.getTime() ?? 0) / 1000);
    const rate = (f: (p: History['points'][number]) => number) => points.map((p) => (f(p) || 0) / step);
    return {
      times,
      requests: [
        { label: 'hit', color: '#2f9e44', values: rate((p) => p.hit) },
        { label: 'miss', color: '#e8590c', values: rate((p) => p.miss) },
        { label: 'joined', color: '#1c7ed6', values: rate((p) => p.joined) },
        { label: 'stale', color: '#ae3ec9', values: rate((p) => p.stale) },
      ],
      bytes: [
        { label: 'from cache', color: '#2f9e44', values: rate((p) => p.bytesFromCache) },
        { label: 'from upstream (WAN)', color: '#e8590c', values: rate((p) => p.bytesFromUpstream) },
      ],
    };
  }, [history]);
}

export function Overview() {
  const stats = usePoll(api.stats, REFRESH_MS);
  const history = usePoll(api.history, REFRESH_MS);
  const upstreams = usePoll(api.upstreams, REFRESH_MS);
  const series = useSeries(history.data);
  const s = stats.data;
  const total = s ? s.requests.hit + s.requests.miss + s.requests.joined + s.requests.stale : 0;
  const wan = s ? Object.values(s.upstreamBytes).reduce((a, b) => a + b, 0) : 0;

  return (
    <section>
      <Problem error={stats.error ?? history.error ?? upstreams.error} />
      {s && (
        <div class="cards">
          <Card
            testid="hit-ratio"
            label="Hit ratio"
            value={percent(s.hitRatio)}
            detail={`${count(s.requests.hit)} hits, ${count(s.requests.joined)} joined, ${count(s.requests.miss)} misses of ${count(total)} pulls`}
          />
          <Card
            testid="wan-saved"
            label="WAN bytes saved"
            value={bytes(s.wanBytesSaved)}
            detail={`${bytes(s.bytesServed.fromCache)} served from cache, ${bytes(wan)} fetched upstream`}
          />
          <StoreUsage store={s.store} />
          <Card
            testid="activity"
            label="Fills in flight"
            value={count(s.fillsInFlight)}
            detail={`up ${duration(s.uptimeSeconds)}${s.requests.stale ? ` · ${count(s.requests.stale)} stale tags served` : ''}`}
          />
        </div>
      )}
      {!s && !stats.error && <p class="muted">Loading…</p>}
      <h2>Upstreams</h2>
      {upstreams.data && <Upstreams list={upstreams.data} />}
      <div class="charts">
        <Chart title="Requests per second" times={series.times} series={series.requests} format={(v) => v.toFixed(v < 10 ? 1 : 0)} />
        <Chart title="Bytes per second" times={series.times} series={series.bytes} format={(v) => `${bytes(v).replace(/\.0+ /, ' ')}/s`} binary />
      </div>
      {history.data && history.data.points.length === 0 && <p class="muted small">No history yet: points appear every {history.data.intervalSeconds} s.</p>}
    </section>
  );
}
