/** @module ui/images — the searchable table of cached images (repository, tag, digest, size, platforms, last pull). */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, type CachedImage } from './api.js';
import { ago, bytes, shortDigest, toDate } from './format.js';
import { usePoll } from './poll.js';
import { Problem } from './problem.js';

const REFRESH_MS = 10_000;
/** Typing waits this long before asking berth, so each keystroke is not a request. */
const DEBOUNCE_MS = 250;

type SortKey = 'repository' | 'size' | 'lastPull';

function sortImages(list: CachedImage[], key: SortKey): CachedImage[] {
  const out = [...list];
  if (key === 'size') return out.sort((a, b) => b.size - a.size);
  if (key === 'lastPull') return out.sort((a, b) => (toDate(b.lastPull)?.getTime() ?? 0) - (toDate(a.lastPull)?.getTime() ?? 0));
  return out.sort((a, b) => `${a.upstream}/${a.repository}:${a.tag ?? ''}`.localeCompare(`${b.upstream}/${b.repository}:${b.tag ?? ''}`));
}

export function Images() {
  const [text, setText] = useState('');
  const [query, setQuery] = useState('');
  const [sort, setSort] = useState<SortKey>('repository');
  useEffect(() => {
    const t = setTimeout(() => setQuery(text.trim()), DEBOUNCE_MS);
    return () => clearTimeout(t);
  }, [text]);
  const images = usePoll(() => api.images(query), REFRESH_MS, [query]);
  const rows = useMemo(() => sortImages(images.data ?? [], sort), [images.data, sort]);
  const total = rows.reduce((a, r) => a + r.size, 0);

  const header = (key: SortKey, label: string) => (
    <th class={`sortable ${sort === key ? 'sorted' : ''}`} onClick={() => setSort(key)}>
      {label}
    </th>
  );
  return (
    <section>
      <Problem error={images.error} />
      <div class="toolbar">
        <input
          type="search"
          placeholder="Search repository, tag or digest"
          value={text}
          aria-label="Search images"
          onInput={(e) => setText((e.target as HTMLInputElement).value)}
          data-testid="image-search"
        />
        <span class="muted" data-testid="image-count">
          {rows.length} image{rows.length === 1 ? '' : 's'} · {bytes(total)}
        </span>
      </div>
      <table class="table" data-testid="images">
        <thead>
          <tr>
            <th>Upstream</th>
            {header('repository', 'Repository')}
            <th>Tag</th>
            <th>Digest</th>
            {header('size', 'Size')}
            <th>Platforms</th>
            {header('lastPull', 'Last pull')}
            <th>Pinned</th>
            <th>Signature</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={`${r.upstream}/${r.repository}@${r.digest}:${r.tag ?? ''}`}>
              <td>{r.upstream}</td>
              <td class="mono">{r.repository}</td>
              <td class="mono">{r.tag ?? ''}</td>
              <td class="mono" title={r.digest}>
                {shortDigest(r.digest)}
              </td>
              <td class="num">{bytes(r.size)}</td>
              <td class="small">{(r.platforms ?? []).join(', ')}</td>
              <td>{ago(r.lastPull)}</td>
              <td>{r.pinned ? <span class="badge badge-ok">pinned</span> : ''}</td>
              <td>{signature(r.signature)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {images.data && rows.length === 0 && (
        <p class="muted">{query ? `Nothing cached matches "${query}".` : 'Nothing cached yet: pull an image through berth or warm one up.'}</p>
      )}
    </section>
  );
}

/** The verification state as a badge; 'not checked' (no verify: entry, or not served yet) stays plain. */
function signature(state: string | undefined) {
  if (state === 'verified') return <span class="badge badge-ok">verified</span>;
  if (state === 'unsigned' || state === 'invalid') return <span class="badge badge-bad">{state}</span>;
  return <span class="muted small">not checked</span>;
}
