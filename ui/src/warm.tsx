/** @module ui/warm — the warm-up form (POST /api/v1/warm) and live progress of each job (polling /api/v1/warm/<id>). */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, type WarmImage, type WarmJob } from './api.js';
import { bytes, duration } from './format.js';
import { Problem } from './problem.js';

const POLL_MS = 1_000;
/** States after which a job or image no longer changes. */
const RUNNING = new Set(['queued', 'pending', 'running', 'active', 'waiting', 'fetching']);
export const isFinished = (state: string): boolean => !RUNNING.has(state);
const FAILED = new Set(['failed', 'error', 'partial', 'cancelled', 'canceled']);

/** Splits the textarea on whitespace and commas, so pasted lists work. */
export function parseList(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function Progress({ done, total }: { done: number; total: number }) {
  const ratio = total > 0 ? Math.min(done / total, 1) : 0;
  return (
    <div class="meter" role="progressbar" aria-valuenow={Math.round(ratio * 100)} aria-valuemin={0} aria-valuemax={100}>
      <div style={{ width: `${(ratio * 100).toFixed(1)}%` }} />
    </div>
  );
}

function ImageRow({ image, rate }: { image: WarmImage; rate: number }) {
  const total = image.bytesTotal ?? 0;
  const done = image.bytesDone ?? 0;
  const eta = rate > 0 && total > done ? (total - done) / rate : undefined;
  const finished = isFinished(image.state);
  return (
    <tr data-state={image.state}>
      <td class="mono">{image.ref}</td>
      <td>
        <span class={`badge ${FAILED.has(image.state) ? 'badge-bad' : finished ? 'badge-ok' : 'badge-busy'}`}>{image.state}</span>
      </td>
      <td class="progress-cell">
        <Progress done={done} total={total} />
      </td>
      <td class="num">
        {bytes(done)} / {bytes(total)}
      </td>
      <td class="num">
        {image.blobsDone ?? 0} / {image.blobsTotal ?? 0} blobs
      </td>
      <td class="num">{finished ? '' : `${bytes(rate)}/s${eta !== undefined ? ` · ${duration(eta)} left` : ''}`}</td>
      <td class="small error-text">{image.error ?? ''}</td>
    </tr>
  );
}

/** One job's progress; polls until the job has finished. */
function JobView({ id }: { id: string }) {
  const [job, setJob] = useState<WarmJob | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const last = useRef<{ at: number; bytes: Map<string, number> } | undefined>(undefined);
  const [rates, setRates] = useState<Map<string, number>>(new Map());

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      let next: WarmJob | undefined;
      try {
        next = await api.warmJob(id);
        if (stopped) return;
        const now = Date.now();
        const prev = last.current;
        const bytesNow = new Map(next.images.map((i) => [i.ref, i.bytesDone ?? 0]));
        if (prev && now > prev.at) {
          setRates(new Map([...bytesNow].map(([ref, b]) => [ref, Math.max(0, (b - (prev.bytes.get(ref) ?? 0)) / ((now - prev.at) / 1000))])));
        }
        last.current = { at: now, bytes: bytesNow };
        setJob(next);
        setError(undefined);
      } catch (err) {
        if (!stopped) setError(err instanceof ApiError ? err : new ApiError(String(err), 0));
      }
      if (!stopped && !(next && isFinished(next.state))) timer = setTimeout(() => void tick(), POLL_MS);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [id]);

  const total = job?.images.reduce((a, i) => a + (i.bytesTotal ?? 0), 0) ?? 0;
  const done = job?.images.reduce((a, i) => a + (i.bytesDone ?? 0), 0) ?? 0;
  return (
    <div class="job" data-testid="warm-job" data-job-id={id} data-state={job?.state ?? 'loading'}>
      <div class="job-head">
        <strong>Job {id}</strong>
        <span
          class={`badge ${job && FAILED.has(job.state) ? 'badge-bad' : job && isFinished(job.state) ? 'badge-ok' : 'badge-busy'}`}
          data-testid="warm-job-state"
        >
          {job?.state ?? 'loading'}
        </span>
        <span class="muted">
          {bytes(done)} of {bytes(total)}
        </span>
      </div>
      <Problem error={error} />
      {job && (
        <table class="table">
          <tbody>
            {job.images.map((i) => (
              <ImageRow key={i.ref} image={i} rate={rates.get(i.ref) ?? 0} />
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function Warm({ jobs, onStarted }: { jobs: string[]; onStarted: (id: string) => void }) {
  const [images, setImages] = useState('');
  const [platforms, setPlatforms] = useState('');
  const [allPlatforms, setAllPlatforms] = useState(false);
  const [pin, setPin] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | undefined>();
  const [hint, setHint] = useState('');

  const submit = async (e: Event) => {
    e.preventDefault();
    const list = parseList(images);
    setHint(list.length === 0 ? 'Name at least one image, e.g. harbor.xing.com/xing/app:v1' : '');
    if (list.length === 0) return;
    setBusy(true);
    try {
      const { id } = await api.startWarm({ images: list, platforms: allPlatforms ? [] : parseList(platforms), allPlatforms, pin });
      setError(undefined);
      setImages('');
      onStarted(id);
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(String(err), 0));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <form class="warm-form" onSubmit={(e) => void submit(e)} data-testid="warm-form">
        <label>
          Images <span class="muted small">one per line: [registry/]repository[:tag|@digest]</span>
          <textarea
            rows={4}
            name="images"
            value={images}
            placeholder="harbor.xing.com/xing/app:v1"
            onInput={(e) => setImages((e.target as HTMLTextAreaElement).value)}
          />
        </label>
        <div class="row">
          <label>
            Platforms <span class="muted small">e.g. linux/arm64,linux/amd64 (empty: berth's default)</span>
            <input type="text" name="platforms" value={platforms} disabled={allPlatforms} onInput={(e) => setPlatforms((e.target as HTMLInputElement).value)} />
          </label>
          <label class="check">
            <input type="checkbox" name="allPlatforms" checked={allPlatforms} onChange={(e) => setAllPlatforms((e.target as HTMLInputElement).checked)} />
            All platforms
          </label>
          <label class="check">
            <input type="checkbox" name="pin" checked={pin} onChange={(e) => setPin((e.target as HTMLInputElement).checked)} />
            Pin (never evict)
          </label>
          <button type="submit" disabled={busy}>
            {busy ? 'Starting…' : 'Warm up'}
          </button>
        </div>
      </form>
      {hint && (
        <div class="problem" role="alert">
          {hint}
        </div>
      )}
      <Problem error={error} />
      {jobs.length === 0 && <p class="muted">Jobs started here show their progress below.</p>}
      {[...jobs].reverse().map((id) => (
        <JobView key={id} id={id} />
      ))}
    </section>
  );
}
