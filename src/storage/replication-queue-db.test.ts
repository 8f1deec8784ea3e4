/** @module storage/replication-queue-db.test — the replication queue's order (blobs, manifests, tags), superseded tags, held tags, restarts, and the worker giving up on refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { OciError } from '../oci/errors.js';
import { openPushDatabase } from './push-db.js';
import { SqliteReplicationQueue } from './replication-queue-db.js';
import { SqliteHeldTags } from './held-tags-db.js';
import { ReplicationWorker, type Replicator } from '../push/replication.js';
import type { Upstream } from '../upstream/target.js';

const d = (n: number) => `sha256:${String(n).padStart(64, '0')}`;
const by = { owner: 'local', leaseMs: 60_000 };

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'berth-queue-'));
  let t = 1_000;
  const db = openPushDatabase(root);
  const queue = new SqliteReplicationQueue(db, () => t);
  const held = new SqliteHeldTags(db, () => t);
  return {
    root,
    db,
    queue,
    held,
    advance: (ms: number) => {
      t += ms;
    },
    now: () => t,
    cleanup: () => {
      db.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

test('jobs run in dependency order: blobs, then the manifest, then the tag', async () => {
  const { queue, held, cleanup } = setup();
  await queue.enqueueBlob('u', 'r', d(1));
  const { manifestJob, tagJob } = await queue.enqueueManifest(
    'u',
    'r',
    d(9),
    [
      { kind: 'blob', digest: d(1) },
      { kind: 'blob', digest: d(2) },
    ],
    { tag: 'v1', baseDigest: null },
  );
  assert.deepEqual(
    (await queue.list()).map((j) => j.kind),
    ['blob', 'manifest', 'blob', 'tag'],
    'the already-queued blob is reused, the other added',
  );
  const first = await queue.claim('u', 10, by);
  assert.deepEqual(first.map((j) => j.digest).sort(), [d(1), d(2)]);
  assert.deepEqual(await queue.claim('u', 10, by), [], 'the manifest waits for its blobs');
  for (const j of first) await queue.complete(j);
  const second = await queue.claim('u', 10, by);
  assert.deepEqual(
    second.map((j) => j.id),
    [manifestJob],
  );
  await queue.complete(second[0]!);
  const third = await queue.claim('u', 10, by);
  assert.deepEqual(
    third.map((j) => j.id),
    [tagJob],
  );
  assert.ok(await held.isHeld('u', 'r', 'v1'), 'the tag is held until the upstream has it');
  await queue.complete(third[0]!);
  assert.ok(!(await held.isHeld('u', 'r', 'v1')));
  assert.deepEqual(await queue.list(), []);
  cleanup();
});

test('a newer push of a tag supersedes a queued one, waits for a running one, and keeps the tag held', async () => {
  const { queue, held, cleanup } = setup();
  await queue.enqueueManifest('u', 'r', d(1), [], { tag: 'v1', baseDigest: null });
  await queue.enqueueManifest('u', 'r', d(2), [], { tag: 'v1', baseDigest: d(1) });
  const tags = (await queue.list()).filter((j) => j.kind === 'tag');
  assert.deepEqual(
    tags.map((j) => j.digest),
    [d(2)],
    'the older, not yet running tag job is gone',
  );
  // Run everything runnable: both manifests, then the tag.
  for (const j of await queue.claim('u', 10, by)) await queue.complete(j);
  const running = await queue.claim('u', 10, by);
  assert.equal(running[0]?.kind, 'tag');
  const { tagJob } = await queue.enqueueManifest('u', 'r', d(3), [], { tag: 'v1', baseDigest: d(2) });
  assert.deepEqual((await queue.list()).find((j) => j.id === tagJob)?.waitingFor.includes(running[0].id), true);
  await queue.complete(running[0]);
  assert.ok(await held.isHeld('u', 'r', 'v1'), 'still held: the newest push has not reached the upstream');
  assert.deepEqual(await held.heldTags('u', 'r'), ['v1']);
  cleanup();
});

test('failures back off, refusals end in failed, retry and drop work, running jobs survive a crash as pending', async () => {
  const { queue, advance, cleanup } = setup();
  const id = await queue.enqueueBlob('u', 'r', d(1));
  await queue.claim('u', 1, by);
  await queue.fail(id, 'upstream unreachable', { transient: true, nextAttemptAt: 6_000, giveUp: false });
  assert.deepEqual(await queue.claim('u', 1, by), [], 'not due yet');
  assert.equal(await queue.wakeTransient('u'), 1);
  assert.equal((await queue.claim('u', 1, by)).length, 1, 'due again once the upstream is back');
  await queue.fail(id, 'DENIED', { transient: false, nextAttemptAt: 0, giveUp: true });
  assert.equal((await queue.get(id))?.state, 'failed');
  advance(60_000);
  assert.deepEqual(await queue.claim('u', 1, by), [], 'failed jobs wait for an operator');
  assert.ok(await queue.retry(id));
  assert.equal((await queue.claim('u', 1, by))[0]?.attempts, 0);
  assert.equal(await queue.recover('local'), 1);
  assert.equal((await queue.get(id))?.state, 'pending');
  assert.ok(await queue.needs(d(1)));
  assert.equal((await queue.drop(id))?.id, id);
  assert.ok(!(await queue.needs(d(1))));
  assert.equal(await queue.drop(id), undefined);
  cleanup();
});

/** A worker of one blob job on upstream `u` (always up), whose every attempt runs `ensureBlob`. */
function blobWorker(q: SqliteReplicationQueue, ensureBlob: () => Promise<string>, policy: { baseDelayMs: number; maxDelayMs: number }) {
  const upstream = { config: { name: 'u' }, client: { breaker: { state: 'up' } } } as unknown as Upstream;
  return new ReplicationWorker({
    queue: q,
    owner: 'local',
    replicator: { ensureBlob } as unknown as Replicator,
    upstreams: [upstream],
    logger: pino({ level: 'silent' }),
    now: () => Date.now(),
    policy: { concurrency: 1, maxRefusals: 3, pollMs: 10, ...policy },
  });
}

test('the worker retries refusals with backoff and marks the job failed after the limit', async () => {
  const { db, cleanup } = setup();
  const realNow = () => Date.now();
  const q = new SqliteReplicationQueue(db, realNow);
  const id = await q.enqueueBlob('u', 'r', d(1));
  let attempts = 0;
  const worker = blobWorker(
    q,
    async () => {
      attempts++;
      throw new OciError('DENIED', 'upstream u denied the push');
    },
    { baseDelayMs: 5, maxDelayMs: 20 },
  );
  await worker.start();
  const deadline = Date.now() + 5_000;
  while ((await q.get(id))?.state !== 'failed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await worker.stop();
  assert.equal((await q.get(id))?.state, 'failed');
  assert.equal(attempts, 3);
  assert.match((await q.get(id))?.lastError ?? '', /denied/);
  cleanup();
});

test('failures worth waiting out do not use up the refusals: a job refused once after many of them is tried again', async () => {
  const { db, cleanup } = setup();
  const realNow = () => Date.now();
  const q = new SqliteReplicationQueue(db, realNow);
  const id = await q.enqueueBlob('u', 'r', d(1));
  let attempts = 0;
  const worker = blobWorker(
    q,
    async () => {
      attempts++;
      // Five 503s (the centre was down), then one refusal, then success.
      if (attempts <= 5) throw new OciError('UNAVAILABLE', 'upstream u answered 503');
      if (attempts === 6) throw new OciError('DENIED', 'upstream u denied the push');
      return 'uploaded';
    },
    { baseDelayMs: 1, maxDelayMs: 5 },
  );
  const keepAlive = setInterval(() => undefined, 50);
  await worker.start();
  const deadline = Date.now() + 5_000;
  while ((await q.get(id)) !== undefined && (await q.get(id))?.state !== 'failed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await worker.stop();
  clearInterval(keepAlive);
  assert.equal(await q.get(id), undefined, `replicated in the end (state ${(await q.get(id))?.state})`);
  assert.equal(attempts, 7);
  cleanup();
});

test("a worker sharing the queue runs a stopped owner's job once its lease lapses", async () => {
  const { db, cleanup } = setup();
  const realNow = () => Date.now();
  const q = new SqliteReplicationQueue(db, realNow);
  const id = await q.enqueueBlob('u', 'r', d(1));
  const ran: string[] = [];
  const upstream = { config: { name: 'u' }, client: { breaker: { state: 'up' } } } as unknown as Upstream;
  const worker = (owner: string, hang: boolean) =>
    new ReplicationWorker({
      queue: q,
      owner,
      replicator: {
        ensureBlob: async () => {
          ran.push(owner);
          // The first owner dies mid-job: its attempt never ends and it renews nothing.
          if (hang) await new Promise(() => undefined);
          return 'uploaded';
        },
      } as unknown as Replicator,
      upstreams: [upstream],
      logger: pino({ level: 'silent' }),
      now: realNow,
      policy: { concurrency: 1, baseDelayMs: 5, maxDelayMs: 20, maxRefusals: 3, pollMs: 20 },
      leaseMs: 300,
    });
  // The workers' timers do not hold the process open; the test's own wait does.
  const keepAlive = setInterval(() => undefined, 50);
  const a = worker('a', true);
  await a.start();
  const until = (cond: () => Promise<boolean>) =>
    (async () => {
      for (const deadline = Date.now() + 5_000; Date.now() < deadline && !(await cond());) await new Promise((r) => setTimeout(r, 10));
    })();
  await until(async () => (await q.get(id))?.owner === 'a');
  await a.stop(10);
  const b = worker('b', false);
  await b.start();
  await until(async () => (await q.get(id)) === undefined);
  await b.stop();
  assert.equal(await q.get(id), undefined, 'done');
  clearInterval(keepAlive);
  assert.deepEqual(ran, ['a', 'b'], "b ran a's job after a's lease lapsed");
  cleanup();
});
