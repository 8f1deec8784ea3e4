/** @module ports/contract/push-ports — the contract every replication queue, held tags and upload sessions implementation must meet. */
import { suite } from './harness.js';
import assert from 'node:assert/strict';
import type { HeldTags } from '../held-tags.js';
import type { ReplicationQueue } from '../replication-queue.js';
import type { UploadSessions } from '../upload-sessions.js';

export interface PushFixture {
  readonly queue: ReplicationQueue;
  readonly heldTags: HeldTags;
  readonly uploads: UploadSessions;
  readonly advance: (ms: number) => void;
  close(): Promise<void>;
}

const d = (n: number) => `sha256:${String(n).padStart(64, '0')}`;
const alice = { owner: 'alice', leaseMs: 10_000 };
const bob = { owner: 'bob', leaseMs: 10_000 };

export function replicationQueueContract(name: string, open: () => Promise<PushFixture>): void {
  const t = suite(`${name} replication queue`, open);

  t('blobs before manifests before tags; a claimed job belongs to its owner', async ({ queue, heldTags }) => {
    const { manifestJob, tagJob } = await queue.enqueueManifest('u', 'r', d(9), [{ kind: 'blob', digest: d(1) }], { tag: 'v1', baseDigest: null });
    assert.ok(await heldTags.isHeld('u', 'r', 'v1'), 'a queued tag is held');
    const blobs = await queue.claim('u', 10, alice);
    assert.deepEqual(
      blobs.map((j) => [j.kind, j.owner]),
      [['blob', 'alice']],
    );
    assert.deepEqual(await queue.claim('u', 10, bob), [], "nothing else is runnable, and alice's job is not offered again");
    await queue.complete(blobs[0]!);
    const [m] = await queue.claim('u', 10, bob);
    assert.equal(m?.id, manifestJob);
    await queue.complete(m);
    const [tag] = await queue.claim('u', 10, bob);
    assert.equal(tag?.id, tagJob);
    await queue.complete(tag!);
    assert.ok(!(await heldTags.isHeld('u', 'r', 'v1')), 'released once the upstream has it');
    assert.deepEqual(await queue.counts(), { pending: 0, running: 0, failed: 0 });
  });

  t("recover frees its own jobs and lapsed leases, never a live owner's", async ({ queue, advance }) => {
    const a = await queue.enqueueBlob('u', 'r', d(1));
    const b = await queue.enqueueBlob('u', 'r', d(2));
    await queue.claim('u', 1, alice);
    await queue.claim('u', 1, bob);
    assert.equal(await queue.recover('alice'), 1, 'alice restarted: her job is due again');
    assert.equal((await queue.get(a))?.state, 'pending');
    assert.equal((await queue.get(b))?.state, 'running', 'bob is alive: his job stays his');
    advance(5_000);
    await queue.renew([b], bob);
    advance(8_000);
    assert.equal(await queue.recover('alice'), 0, "alice restarts again: bob's renewed lease has not lapsed");
    assert.equal((await queue.get(b))?.state, 'running', 'renewed: still within its lease');
    assert.equal(await queue.recover(), 0, 'a sweep leaves live leases alone');
    advance(20_000);
    assert.equal(await queue.recover(), 1, 'a sweep frees a lapsed lease');
    await queue.claim('u', 1, bob);
    advance(20_000);
    assert.equal(await queue.recover('carol'), 1, "a lapsed lease is anyone's");
    assert.equal((await queue.get(b))?.state, 'pending');
  });

  t('a newer push of a tag supersedes a queued one, waits for a running one, and keeps the tag held', async ({ queue, heldTags }) => {
    await queue.enqueueManifest('u', 'r', d(1), [{ kind: 'blob', digest: d(5) }], { tag: 'v1', baseDigest: null });
    await queue.enqueueManifest('u', 'r', d(2), [{ kind: 'blob', digest: d(5) }], { tag: 'v1', baseDigest: d(1) });
    const jobs = await queue.list();
    assert.deepEqual(
      jobs.filter((j) => j.kind === 'tag').map((j) => [j.digest, j.baseDigest]),
      [[d(2), d(1)]],
      'the older, not yet running tag job is gone',
    );
    assert.equal(jobs.filter((j) => j.kind === 'blob').length, 1, 'one job per item, shared by both manifests');
    assert.deepEqual(await queue.counts(), { pending: 4, running: 0, failed: 0 });
    for (const j of await queue.claim('u', 10, alice)) await queue.complete(j);
    for (const j of await queue.claim('u', 10, alice)) await queue.complete(j);
    const running = await queue.claim('u', 10, alice);
    assert.deepEqual(
      running.map((j) => [j.kind, j.tag]),
      [['tag', 'v1']],
    );
    const { tagJob } = await queue.enqueueManifest('u', 'r', d(3), [], { tag: 'v1', baseDigest: d(2) });
    assert.ok((await queue.list()).find((j) => j.id === tagJob)?.waitingFor.includes(running[0]!.id), 'the newer tag waits for the running one');
    assert.equal(await heldTags.heldDigest('u', 'r', 'v1'), d(3));
    await queue.complete(running[0]!);
    assert.equal(await heldTags.heldDigest('u', 'r', 'v1'), d(3), 'still held: the newest push has not reached the upstream');
    assert.deepEqual(
      (await queue.claim('u', 10, alice)).map((j) => [j.kind, j.digest]),
      [['manifest', d(3)]],
      'the new manifest first; its tag waits for it',
    );
    assert.equal(await queue.nextDue('other'), undefined);
  });

  t('fail, wake, retry, drop; needs and needed', async ({ queue, advance }) => {
    const id = await queue.enqueueBlob('u', 'r', d(1));
    await queue.claim('u', 1, alice);
    const later = 8_000_000_000_000_000;
    await queue.fail(id, 'down', { transient: true, nextAttemptAt: later, giveUp: false });
    assert.deepEqual(await queue.claim('u', 1, alice), []);
    assert.equal(await queue.nextDue('u'), later);
    assert.equal(await queue.wakeTransient('u'), 1);
    const [again] = await queue.claim('u', 1, alice);
    assert.equal(again?.attempts, 1);
    assert.equal(again?.refusals, 0, 'a transient failure is no refusal');
    await queue.fail(id, 'no', { transient: false, nextAttemptAt: 0, giveUp: false });
    advance(100_000);
    const [refused] = await queue.claim('u', 1, alice);
    assert.deepEqual([refused?.attempts, refused?.refusals], [2, 1]);
    await queue.fail(id, 'no', { transient: false, nextAttemptAt: 0, giveUp: true });
    advance(100_000);
    assert.deepEqual(await queue.claim('u', 1, alice), [], 'failed waits for an operator');
    assert.ok(await queue.retry(id));
    const [fresh] = await queue.claim('u', 1, alice);
    assert.deepEqual([fresh?.attempts, fresh?.refusals], [0, 0], 'a retry starts the count again');
    await queue.fail(id, 'down', { transient: true, nextAttemptAt: 0, giveUp: false });
    assert.ok(await queue.needs(d(1)));
    assert.deepEqual([...(await queue.needed())], [d(1)]);
    assert.equal((await queue.list())[0]?.id, id);
    assert.equal((await queue.drop(id))?.id, id);
    assert.ok(!(await queue.needs(d(1))));
    assert.equal(await queue.retry(id), false);
  });
}

export function heldTagsContract(name: string, open: () => Promise<PushFixture>): void {
  const t = suite(`${name} held tags`, open);
  t('hold, list, release one or all of a digest', async ({ heldTags }) => {
    await heldTags.hold('u', 'r', 'b', d(1), 'local');
    await heldTags.hold('u', 'r', 'a', d(1), 'replicating');
    await heldTags.hold('u', 'r', 'c', d(2), 'local');
    assert.deepEqual(await heldTags.heldTags('u', 'r'), ['a', 'b', 'c']);
    assert.deepEqual(await heldTags.heldTags('u', 'other'), []);
    assert.equal(await heldTags.heldDigest('u', 'r', 'a'), d(1));
    await heldTags.hold('u', 'r', 'a', d(3), 'replicating');
    assert.equal(await heldTags.heldDigest('u', 'r', 'a'), d(3), 'the newest hold wins');
    assert.equal(await heldTags.heldDigest('u', 'r', 'none'), undefined);
    await heldTags.hold('u', 'r', 'a', d(1), 'replicating');
    await heldTags.release('u', 'r', 'c');
    assert.equal(await heldTags.isHeld('u', 'r', 'c'), false);
    await heldTags.releaseTagsOf('u', 'r', d(1));
    assert.deepEqual(await heldTags.heldTags('u', 'r'), []);
  });
}

export function uploadSessionsContract(name: string, open: () => Promise<PushFixture>): void {
  const t = suite(`${name} upload sessions`, open);
  t('insert, get, touch, all, delete', async ({ uploads, advance }) => {
    await uploads.insert('id-1', 'u', 'r');
    const row = await uploads.get('id-1');
    assert.deepEqual([row?.upstream, row?.repository], ['u', 'r']);
    advance(1_000);
    await uploads.touch('id-1');
    assert.equal((await uploads.get('id-1'))!.updatedAt, row!.updatedAt + 1_000);
    assert.deepEqual(
      (await uploads.all()).map((r) => r.id),
      ['id-1'],
    );
    await uploads.delete('id-1');
    assert.equal(await uploads.get('id-1'), undefined);
    assert.deepEqual(await uploads.all(), []);
  });
}
