/** @module ports/contract/hub-state-contract — the contract every hub state implementation must meet: what a hub writes is what a restarted hub reads. */
import assert from 'node:assert/strict';
import { suite } from './harness.js';
import type { HubState, StoredJob, StoredPart } from '../hub-state.js';

export interface HubStateFixture {
  readonly state: HubState;
  /** The same state as a restarted hub opens it (the previous handle may be dropped unclosed, as after SIGKILL). */
  reopen(): Promise<HubState>;
  close(): Promise<void>;
}

const job = (id: number, extra: Partial<StoredJob> = {}): StoredJob => ({
  id,
  image: 'harbor.xing.com/library/app:v1',
  digest: null,
  source: 'harbor',
  selector: '',
  url: 'https://harbor.xing.com/v2/library/app/manifests/v1',
  createdAt: 1_000,
  finishedAt: null,
  error: null,
  ...extra,
});
const part = (site: string, extra: Partial<StoredPart> = {}): StoredPart => ({
  site,
  state: 'pending',
  error: null,
  digest: null,
  bytesFetched: 0,
  bytesTotal: 0,
  finishedAt: null,
  ...extra,
});

export function hubStateContract(name: string, open: () => Promise<HubStateFixture>): void {
  const t = suite(`${name} hub state`, open);

  t('job ids only grow, from the floor of a new sequence, and never repeat after a restart', async (f) => {
    const a = await f.state.nextJobId(500);
    const b = await f.state.nextJobId(500);
    assert.equal(a, 500);
    assert.equal(b, 501);
    // A store may reserve ids in blocks: a restart may skip some, never repeat one.
    const again = await f.reopen();
    const c = await again.nextJobId(0);
    assert.ok(c > b, `${c} follows ${b}: the floor only seeds a new sequence`);
    assert.equal(await again.nextJobId(0), c + 1);
  });

  t('jobs, their parts and sites written are read back whole after a restart', async (f) => {
    await f.state.write({
      jobs: [job(7), job(8, { digest: 'sha256:' + 'a'.repeat(64), source: 'event', selector: 'eu-*' })],
      parts: [
        { job: 7, part: part('eu-1') },
        { job: 7, part: part('eu-2', { state: 'running' }) },
        { job: 8, part: part('eu-1') },
      ],
      sites: [{ name: 'eu-1', report: { name: 'eu-1', intervalMs: 500, images: 3 }, at: 2_000, firstSeen: 1_000 }],
    });
    await f.state.write({
      parts: [{ job: 7, part: part('eu-2', { state: 'success', digest: 'sha256:' + 'b'.repeat(64), bytesFetched: 5, bytesTotal: 9, finishedAt: 3_000 }) }],
      jobs: [job(7, { finishedAt: 3_000 })],
      sites: [{ name: 'eu-1', report: { name: 'eu-1', intervalMs: 500, images: 4 }, at: 3_000, firstSeen: 2_500 }],
    });
    const loaded = await (await f.reopen()).load();
    assert.deepEqual(
      loaded.jobs.map((j) => [j.id, j.finishedAt, j.selector, j.parts.map((p) => [p.site, p.state])]),
      [
        [
          7,
          3_000,
          '',
          [
            ['eu-1', 'pending'],
            ['eu-2', 'success'],
          ],
        ],
        [8, null, 'eu-*', [['eu-1', 'pending']]],
      ],
    );
    assert.deepEqual(
      loaded.jobs[0]!.parts[1],
      part('eu-2', { state: 'success', digest: 'sha256:' + 'b'.repeat(64), bytesFetched: 5, bytesTotal: 9, finishedAt: 3_000 }),
    );
    assert.equal(loaded.jobs[1]!.digest, 'sha256:' + 'a'.repeat(64));
    assert.deepEqual(loaded.sites, [{ name: 'eu-1', report: { name: 'eu-1', intervalMs: 500, images: 4 }, at: 3_000, firstSeen: 1_000 }], 'first seen is kept');
  });

  t("a site's last-poll time written apart from its report is read back with it, never going back", async (f) => {
    const report = { name: 'eu-1', intervalMs: 500, images: 3 };
    await f.state.write({ sites: [{ name: 'eu-1', report, at: 2_000, firstSeen: 1_000 }] });
    await f.state.write({ seen: [{ name: 'eu-1', at: 5_000 }] });
    await f.state.write({ seen: [{ name: 'eu-1', at: 4_000 }] });
    assert.deepEqual((await (await f.reopen()).load()).sites, [{ name: 'eu-1', report, at: 5_000, firstSeen: 1_000 }]);
  });

  t('a deleted job goes with its parts; the others stay', async (f) => {
    await f.state.write({
      jobs: [job(1), job(2)],
      parts: [
        { job: 1, part: part('a') },
        { job: 2, part: part('a') },
      ],
    });
    await f.state.write({ deleteJobs: [1] });
    const loaded = await f.state.load();
    assert.deepEqual(
      loaded.jobs.map((j) => [j.id, j.parts.length]),
      [[2, 1]],
    );
  });

  t('a thousand parts of one job are written and read in one go', async (f) => {
    const sites = Array.from({ length: 1_000 }, (_, i) => `site-${String(i).padStart(4, '0')}`);
    await f.state.write({ jobs: [job(3)], parts: sites.map((s) => ({ job: 3, part: part(s) })) });
    const loaded = await (await f.reopen()).load();
    assert.deepEqual(
      loaded.jobs[0]!.parts.map((p) => p.site),
      sites,
    );
  });

  t("a site's held blobs replace the previous set and are read back after a restart", async (f) => {
    assert.equal(await f.state.heldHash('eu-1'), undefined);
    assert.equal(await f.state.held('eu-1'), undefined);
    const digests = Buffer.alloc(64, 7);
    await f.state.putHeld('eu-1', { hash: 'h1', at: 1_000, count: 1, digests: Buffer.alloc(32, 1) });
    await f.state.putHeld('eu-1', { hash: 'h2', at: 2_000, count: 2, digests });
    const again = await f.reopen();
    assert.equal(await again.heldHash('eu-1'), 'h2');
    const held = await again.held('eu-1');
    assert.deepEqual({ ...held, digests: Buffer.from(held!.digests) }, { hash: 'h2', at: 2_000, count: 2, digests });
    assert.equal(await again.heldHash('eu-2'), undefined);
  });

  t('a fan-out written as a list of sites reads back as pending parts; a part written with it ends as written', async (f) => {
    const sites = Array.from({ length: 1_200 }, (_, i) => `site-${String(i).padStart(4, '0')}`);
    const done = part('site-0001', { state: 'success', digest: 'sha256:' + 'c'.repeat(64), bytesTotal: 4, finishedAt: 2_000 });
    await f.state.write({ jobs: [job(4)], pendingParts: [{ job: 4, sites }], parts: [{ job: 4, part: done }] });
    const loaded = await (await f.reopen()).load();
    const parts = loaded.jobs[0]!.parts;
    assert.deepEqual(
      parts.map((p) => p.site),
      sites,
    );
    assert.deepEqual(parts[0], part('site-0000'));
    assert.deepEqual(parts[1], done);
  });
}
