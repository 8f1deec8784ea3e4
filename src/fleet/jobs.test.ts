/** @module fleet/jobs.test — the hub's jobs and sites book: liveness that counts only a site's silence, tasks by site, state from counts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetJobs } from './jobs.js';
import type { SiteReport } from './hub-protocol.js';
import { SiteBook } from './sites.js';

const report = (name: string, intervalMs = 1_000) => ({ name, intervalMs }) as SiteReport;

function hub(sites: string[]) {
  let t = 1_000_000;
  const now = () => t;
  const book = new SiteBook(now);
  let id = 1;
  const jobs = new FleetJobs(book, now, async () => id++);
  for (const s of sites) {
    book.arrive(report(s), now());
    book.answered(s);
  }
  return { book, jobs, advance: (ms: number) => (t += ms), now };
}

test('a site waiting for its answer is never stale, however slow the hub; one silent for three intervals is', () => {
  const h = hub(['a', 'b']);
  h.book.arrive(report('a'), h.now());
  h.advance(10_000);
  assert.equal(h.book.stateOf('a')?.state, 'up', 'its poll is still being answered');
  h.book.answered('a');
  h.advance(2_500);
  assert.equal(h.book.stateOf('a')?.state, 'up', 'counted from the answer, not from the arrival');
  assert.equal(h.book.stateOf('b')?.state, 'stale');
  h.advance(1_000);
  assert.equal(h.book.stateOf('a')?.state, 'stale');
});

test('a restarted hub does not age its sites by its own downtime', () => {
  let t = 5_000_000;
  const book = new SiteBook(() => t);
  book.restore([{ name: 'a', report: { name: 'a', intervalMs: 1_000 }, at: t - 60_000, firstSeen: 1 }]);
  assert.equal(book.stateOf('a')?.state, 'up');
  t += 3_001;
  assert.equal(book.stateOf('a')?.state, 'stale');
});

test('a poll is handed only its own tasks; a sweep fails the parts of silent sites and nothing else', async () => {
  const h = hub(['a', 'b', 'c']);
  const made = await Promise.all([1, 2, 3].map((n) => h.jobs.create({ image: `r/app:${n}`, source: 'api', matches: () => true })));
  assert.deepEqual(
    h.jobs.tasksFor('a', []).map((t) => t.taskId),
    ['1/a', '2/a', '3/a'],
  );
  assert.deepEqual(h.jobs.tasksFor('a', ['1/a', '2/a', '3/a']), [], 'running tasks it still works on are not sent again');
  h.jobs.complete('a', [{ taskId: '1/a', ok: true, bytesFetched: 1, bytesTotal: 1 }]);
  h.jobs.complete('a', [{ taskId: '2/b', ok: true, bytesFetched: 1, bytesTotal: 1 }]);
  assert.deepEqual(h.jobs.counts(made[0]!.job), { pending: 2, running: 0, success: 1, failure: 0 }, "a site cannot finish another's part");
  // a and b keep polling; c falls silent.
  h.advance(2_000);
  for (const s of ['a', 'b']) {
    h.book.arrive(report(s), h.now());
    h.book.answered(s);
  }
  h.advance(1_500);
  h.jobs.sweep();
  assert.deepEqual(h.jobs.counts(made[0]!.job), { pending: 1, running: 0, success: 1, failure: 1 });
  assert.match(made[0]!.job.sites.find((s) => s.site === 'c')!.error!, /silent/);
  h.jobs.complete('b', [{ taskId: '1/b', ok: true, bytesFetched: 1, bytesTotal: 1 }]);
  assert.equal(h.jobs.state(made[0]!.job), 'FAILURE');
  assert.equal(h.jobs.summary().PENDING, 2);
  const writes = h.jobs.takeWrites();
  assert.ok((writes.parts ?? []).length > 0 && (writes.jobs ?? []).some((j) => j.id === 1 && j.finishedAt !== null));
  assert.deepEqual(h.jobs.takeWrites().parts, [], 'each change is written once');
});

test('a job over many sites fans out whole and stays PENDING until then', async () => {
  const names = Array.from({ length: 1_200 }, (_, i) => `s${String(i).padStart(4, '0')}`);
  const h = hub(names);
  const pending = h.jobs.create({ image: 'r/app:1', source: 'api', matches: () => true });
  const { job } = await pending;
  assert.equal(job.sites.length, 1_200);
  assert.equal(h.jobs.state(job), 'PENDING');
  assert.equal(h.jobs.tasksFor('s0999', []).length, 1);
});

test('a fan-out is written as one list of sites per job, even when a write is taken in its middle', async () => {
  const names = Array.from({ length: 1_200 }, (_, i) => `s${String(i).padStart(4, '0')}`);
  const h = hub(names);
  const creating = h.jobs.create({ image: 'app:v1', source: 'api', matches: () => true });
  await new Promise((r) => setImmediate(r));
  const early = h.jobs.takeWrites();
  const { job } = await creating;
  const late = h.jobs.takeWrites();
  const written = [...(early.pendingParts ?? []), ...(late.pendingParts ?? [])].flatMap((p) => p.sites);
  assert.deepEqual(written, names, 'every site once, in order');
  assert.equal(early.parts?.length ?? 0, 0, 'no per-site rows for a fresh part');
  assert.deepEqual(
    late.jobs?.map((j) => j.id),
    [job.id],
  );
});

test('a task handed out is not written again until it finishes; one its site already works on is not handed out again', async () => {
  const h = hub(['a']);
  const { job } = await h.jobs.create({ image: 'app:v1', source: 'api', matches: () => true });
  h.jobs.takeWrites();
  const taskId = `${job.id}/a`;
  assert.deepEqual(
    h.jobs.tasksFor('a', [taskId]).map((t) => t.taskId),
    [],
    'a restarted hub reads it pending while the site still works on it',
  );
  assert.equal(h.jobs.counts(job).running, 1);
  assert.equal(h.jobs.takeWrites().parts?.length, 0, 'running is not written');
  assert.deepEqual(
    h.jobs.tasksFor('a', []).map((t) => t.taskId),
    [taskId],
    'a site that lost it is handed it again',
  );
  h.jobs.complete('a', [{ taskId, ok: true, bytesFetched: 0, bytesTotal: 1 }]);
  assert.deepEqual(
    h.jobs.takeWrites().parts?.map((p) => p.part.state),
    ['success'],
  );
});
