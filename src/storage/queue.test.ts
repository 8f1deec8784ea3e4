/** @module storage/queue.test — the replication queue's order (blobs, manifests, tags), superseded tags, held tags, restarts, and the worker giving up on refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { OciError } from '../oci/errors.js';
import { openPushDatabase, QueueStore } from './queue.js';
import { ReplicationWorker, type Replicator } from '../cache/replication.js';
import type { Upstream } from '../cache/target.js';

const d = (n: number) => `sha256:${String(n).padStart(64, '0')}`;

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'berth-queue-'));
  let t = 1_000;
  const db = openPushDatabase(root);
  const queue = new QueueStore(db, () => t);
  return { root, db, queue, advance: (ms: number) => { t += ms; }, now: () => t, cleanup: () => { db.close(); rmSync(root, { recursive: true, force: true }); } };
}

test('jobs run in dependency order: blobs, then the manifest, then the tag', () => {
  const { queue, cleanup } = setup();
  queue.enqueueBlob('u', 'r', d(1));
  const { manifestJob, tagJob } = queue.enqueueManifest('u', 'r', d(9), [{ kind: 'blob', digest: d(1) }, { kind: 'blob', digest: d(2) }], { tag: 'v1', baseDigest: null });
  assert.deepEqual(queue.list().map((j) => j.kind), ['blob', 'manifest', 'blob', 'tag'], 'the already-queued blob is reused, the other added');
  const first = queue.claim('u', 10);
  assert.deepEqual(first.map((j) => j.digest).sort(), [d(1), d(2)]);
  assert.deepEqual(queue.claim('u', 10), [], 'the manifest waits for its blobs');
  for (const j of first) queue.complete(j);
  const second = queue.claim('u', 10);
  assert.deepEqual(second.map((j) => j.id), [manifestJob]);
  queue.complete(second[0]!);
  const third = queue.claim('u', 10);
  assert.deepEqual(third.map((j) => j.id), [tagJob]);
  assert.ok(queue.isHeld('u', 'r', 'v1'), 'the tag is held until the upstream has it');
  queue.complete(third[0]!);
  assert.ok(!queue.isHeld('u', 'r', 'v1'));
  assert.deepEqual(queue.list(), []);
  cleanup();
});

test('a newer push of a tag supersedes a queued one, waits for a running one, and keeps the tag held', () => {
  const { queue, cleanup } = setup();
  queue.enqueueManifest('u', 'r', d(1), [], { tag: 'v1', baseDigest: null });
  queue.enqueueManifest('u', 'r', d(2), [], { tag: 'v1', baseDigest: d(1) });
  const tags = queue.list().filter((j) => j.kind === 'tag');
  assert.deepEqual(tags.map((j) => j.digest), [d(2)], 'the older, not yet running tag job is gone');
  // Run everything runnable: both manifests, then the tag.
  for (const j of queue.claim('u', 10)) queue.complete(j);
  const running = queue.claim('u', 10);
  assert.equal(running[0]?.kind, 'tag');
  const { tagJob } = queue.enqueueManifest('u', 'r', d(3), [], { tag: 'v1', baseDigest: d(2) });
  assert.deepEqual(queue.list().find((j) => j.id === tagJob)?.waitingFor.includes(running[0]!.id), true);
  queue.complete(running[0]!);
  assert.ok(queue.isHeld('u', 'r', 'v1'), 'still held: the newest push has not reached the upstream');
  assert.deepEqual(queue.heldTags('u', 'r'), ['v1']);
  cleanup();
});

test('failures back off, refusals end in failed, retry and drop work, running jobs survive a crash as pending', () => {
  const { queue, advance, cleanup } = setup();
  const id = queue.enqueueBlob('u', 'r', d(1));
  queue.claim('u', 1);
  queue.fail(id, 'upstream unreachable', { transient: true, nextAttemptAt: 6_000, giveUp: false });
  assert.deepEqual(queue.claim('u', 1), [], 'not due yet');
  assert.equal(queue.wakeTransient('u'), 1);
  assert.equal(queue.claim('u', 1).length, 1, 'due again once the upstream is back');
  queue.fail(id, 'DENIED', { transient: false, nextAttemptAt: 0, giveUp: true });
  assert.equal(queue.get(id)?.state, 'failed');
  advance(60_000);
  assert.deepEqual(queue.claim('u', 1), [], 'failed jobs wait for an operator');
  assert.ok(queue.retry(id));
  assert.equal(queue.claim('u', 1)[0]?.attempts, 0);
  assert.equal(queue.resetRunning(), 1);
  assert.equal(queue.get(id)?.state, 'pending');
  assert.ok(queue.needs(d(1)));
  assert.equal(queue.drop(id)?.id, id);
  assert.ok(!queue.needs(d(1)));
  assert.equal(queue.drop(id), undefined);
  cleanup();
});

test('the worker retries refusals with backoff and marks the job failed after the limit', async () => {
  const { db, cleanup } = setup();
  const realNow = () => Date.now();
  const q = new QueueStore(db, realNow);
  const id = q.enqueueBlob('u', 'r', d(1));
  let attempts = 0;
  const replicator = { ensureBlob: async () => { attempts++; throw new OciError('DENIED', 'upstream u denied the push'); } } as unknown as Replicator;
  const upstream = { config: { name: 'u' }, client: { breaker: { state: 'up' } } } as unknown as Upstream;
  const worker = new ReplicationWorker({
    queue: q, replicator, upstreams: [upstream], logger: pino({ level: 'silent' }), now: realNow,
    policy: { concurrency: 1, baseDelayMs: 5, maxDelayMs: 20, maxRefusals: 3, pollMs: 10 },
  });
  worker.start();
  const deadline = Date.now() + 5_000;
  while (q.get(id)?.state !== 'failed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await worker.stop();
  assert.equal(q.get(id)?.state, 'failed');
  assert.equal(attempts, 3);
  assert.match(q.get(id)?.lastError ?? '', /denied/);
  cleanup();
});
