/** @module ui/main — the dashboard shell: navigation by URL hash, and the pages it shows. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Bundles } from './bundles.js';
import { Images } from './images.js';
import { Overview } from './overview.js';
import { Queue } from './queue.js';
import { Sites } from './sites.js';
import { Warm } from './warm.js';
import './style.css';

const PAGES = [
  { hash: '#/', title: 'Overview' },
  { hash: '#/images', title: 'Images' },
  { hash: '#/warm', title: 'Warm-up' },
  { hash: '#/queue', title: 'Push queue' },
  { hash: '#/bundles', title: 'Bundles' },
  { hash: '#/sites', title: 'Sites' },
] as const;
type Hash = (typeof PAGES)[number]['hash'];

const current = (): Hash => PAGES.find((p) => p.hash === location.hash)?.hash ?? '#/';
/** Warm jobs started in this tab survive a reload, not a new tab. */
const JOBS_KEY = 'berth.warmJobs';

function loadJobs(): string[] {
  try {
    const v = JSON.parse(sessionStorage.getItem(JOBS_KEY) ?? '[]') as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

function App() {
  const [page, setPage] = useState<Hash>(current());
  const [jobs, setJobs] = useState<string[]>(loadJobs);
  useEffect(() => {
    const onHash = () => setPage(current());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    document.title = `berth · ${PAGES.find((p) => p.hash === page)?.title ?? ''}`;
  }, [page]);
  const started = (id: string) => {
    const next = [...jobs.filter((j) => j !== id), id].slice(-20);
    sessionStorage.setItem(JOBS_KEY, JSON.stringify(next));
    setJobs(next);
  };

  return (
    <>
      <header>
        <div class="brand">
          berth <span class="muted">edge image cache</span>
        </div>
        <nav>
          {PAGES.map((p) => (
            <a key={p.hash} href={p.hash} class={p.hash === page ? 'active' : ''} aria-current={p.hash === page ? 'page' : undefined}>
              {p.title}
            </a>
          ))}
        </nav>
      </header>
      <main>
        <h1>{PAGES.find((p) => p.hash === page)?.title}</h1>
        {page === '#/' && <Overview />}
        {page === '#/images' && <Images />}
        {page === '#/warm' && <Warm jobs={jobs} onStarted={started} />}
        {page === '#/queue' && <Queue />}
        {page === '#/bundles' && <Bundles />}
        {page === '#/sites' && <Sites />}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
