/**
 * @module fleet/views-paging.test — the hub's paged views against generated fleets and hostile query strings: following
 * `next` from the first page yields every matching row once, in order; anything a caller can send is a page or a 400.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ApiError } from '../oci/errors.js';
import { FleetJobs } from './jobs.js';
import type { SiteReport } from './hub-protocol.js';
import { SiteBook } from './sites.js';
import { jobsView, sitesView, summaryView, type View } from './views.js';

const report = (name: string, intervalMs: number) => ({ name, intervalMs }) as SiteReport;

/** A book where sites with a long interval are up and those with a short one have gone stale. */
function bookOf(sites: ReadonlyArray<{ name: string; stale: boolean }>): SiteBook {
  let t = 1_000_000;
  const book = new SiteBook(() => t);
  for (const s of sites) {
    book.arrive(report(s.name, s.stale ? 1_000 : 3_600_000), t);
    book.answered(s.name);
  }
  t += 10_000;
  return book;
}

/** Every page from `first` on, following `next` as a client would (its path and query only). */
function walk(first: URL, view: (url: URL) => View): unknown[][] {
  const pages: unknown[][] = [];
  let url: URL | undefined = first;
  while (url && pages.length < 10_000) {
    const v = view(url);
    pages.push(v.body as unknown[]);
    url = v.next === undefined ? undefined : new URL(v.next, 'http://hub');
  }
  return pages;
}

const siteName = fc.stringMatching(/^[a-c][a-c0-9-]{0,4}$/);
const fleet = fc.uniqueArray(fc.record({ name: siteName, stale: fc.boolean() }), { selector: (s) => s.name, maxLength: 40 });

test('sites: following next from the first page lists every matching site once, in name order', () => {
  fc.assert(
    fc.property(
      fleet,
      fc.integer({ min: 1, max: 7 }),
      fc.option(fc.constantFrom('up', 'stale'), { nil: undefined }),
      fc.option(fc.stringMatching(/^[a-c][a-c0-9-]{0,2}$/), { nil: undefined }),
      (sites, limit, state, prefix) => {
        const book = bookOf(sites);
        const q = new URLSearchParams({ limit: String(limit) });
        if (state) q.set('state', state);
        if (prefix) q.set('prefix', prefix);
        const pages = walk(new URL(`http://hub/api/v1/sites?${q}`), (u) => sitesView(book, u));
        const names = pages.flat().map((s) => (s as { name: string }).name);
        const want = sites
          .filter((s) => (state === undefined || (state === 'stale') === s.stale) && (prefix === undefined || s.name.startsWith(prefix)))
          .map((s) => s.name)
          .sort();
        assert.deepEqual(names, want);
        for (const p of pages) assert.ok(p.length <= limit);
        // A last page is never an empty page reached by a next link.
        if (pages.length > 1) assert.ok(pages.every((p) => p.length > 0));
      },
    ),
    { numRuns: 300 },
  );
});

test('jobs: following next from the first page lists every matching job once, newest first', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.constantFrom('a/app:v1', 'a/db:v2', 'b/web:v1', 'c:v9'), { maxLength: 25 }),
      fc.integer({ min: 1, max: 6 }),
      fc.option(fc.constantFrom('a/', 'b', 'c:', 'zz'), { nil: undefined }),
      async (images, limit, prefix) => {
        const book = bookOf([{ name: 'site-1', stale: false }]);
        let id = 1;
        const jobs = new FleetJobs(
          book,
          () => 2_000_000,
          async () => id++,
        );
        for (const image of images) await jobs.create({ image, source: 'api', matches: () => true });
        const q = new URLSearchParams({ limit: String(limit) });
        if (prefix) q.set('prefix', prefix);
        const pages = walk(new URL(`http://hub/api/v1/fleet/jobs?${q}`), (u) => jobsView(jobs, u));
        const got = pages.flat().map((j) => (j as { id: number }).id);
        const want = images
          .map((image, i) => ({ image, id: i + 1 }))
          .filter((j) => prefix === undefined || j.image.startsWith(prefix))
          .map((j) => j.id)
          .reverse();
        assert.deepEqual(got, want);
      },
    ),
    { numRuns: 150 },
  );
});

const hostileKey = fc.constantFrom('limit', 'cursor', 'state', 'prefix', 'LIMIT', 'limit[]', '', '%00', 'x'.repeat(300), '__proto__', 'constructor');
const hostileValue = fc.oneof(
  fc.constantFrom('0', '1', '-1', '1e3', '5000', '5001', '999999999999', 'NaN', ' 1', '0x10', '', 'up', 'stale', 'PENDING', 'pending'),
  fc.constantFrom('\u0000', '\uffff', '../../etc', 'a'.repeat(257), 'a'.repeat(5000), '%', '%zz', '\ud800'),
  fc.string({ maxLength: 40 }),
);

test('any query a caller can send to the hub views is a page or a 400 naming a parameter, never anything else', () => {
  const book = bookOf([
    { name: 'a-1', stale: false },
    { name: 'b-2', stale: true },
  ]);
  const jobs = new FleetJobs(
    book,
    () => 2_000_000,
    async () => 1,
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(hostileKey, hostileValue), { maxLength: 5 }),
      fc.constantFrom('sites', 'jobs', 'sites-summary', 'jobs-summary'),
      (pairs, which) => {
        const url = new URL('http://hub/api/v1/x');
        for (const [k, v] of pairs) url.searchParams.append(k, v);
        try {
          const v =
            which === 'sites'
              ? sitesView(book, url)
              : which === 'jobs'
                ? jobsView(jobs, url)
                : summaryView(which === 'sites-summary' ? 'sites' : 'jobs', book, jobs, url);
          assert.ok(Array.isArray(v.body) || typeof v.body === 'object');
          if (v.next !== undefined) assert.ok(v.next.startsWith('/api/v1/x?') && v.next.length < 2_000, v.next);
        } catch (err) {
          assert.ok(err instanceof ApiError, String(err));
          assert.equal(err.status, 400);
          assert.equal(err.code, 'INVALID_REQUEST');
          assert.match(err.message, /^query parameter "/);
          assert.ok(err.message.length < 600, 'the message quotes at most a short piece of what was sent');
        }
      },
    ),
    { numRuns: 500 },
  );
});
