/** @module ports/contract/site-contract — the contracts every site coordination implementation must meet, one per role: two replicas on one backend. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BlobHolders, FillLeases, SiteMembership, TagRecords, UploadOwners } from '../site.js';
import { suite } from './harness.js';

/** Two replicas (`a`, `b`) sharing one fresh backend. TTLs in the suites are real time, kept short. */
export interface SiteFixture<S> {
  readonly a: S;
  readonly b: S;
  close(): Promise<void>;
}

const D = `sha256:${'a'.repeat(64)}`;

export function siteMembershipContract(name: string, open: () => Promise<SiteFixture<SiteMembership>>): void {
  const t = suite(`${name} site membership`, open);

  t('members are live until their heartbeat lapses; leave removes at once', async ({ a, b }) => {
    await a.heartbeat(10_000);
    await b.heartbeat(300);
    assert.deepEqual((await a.members()).map((m) => m.url).sort(), [a.self, b.self].sort());
    await sleep(450);
    assert.deepEqual(
      (await a.members()).map((m) => m.url),
      [a.self],
      'a lapsed heartbeat drops the member',
    );
    await a.leave();
    assert.deepEqual(await b.members(), []);
  });
}

export function fillLeasesContract(name: string, open: () => Promise<SiteFixture<FillLeases>>): void {
  const t = suite(`${name} fill leases`, open);

  t('one fill lease per digest; tokens grow; renew and release only by the holder', async ({ a, b }) => {
    const first = await a.acquireFill(D, 10_000);
    assert.ok('lease' in first);
    assert.deepEqual(await b.acquireFill(D, 10_000), { owner: a.self });
    assert.equal(await b.fillOwner(D), a.self);
    assert.equal(await b.takeOverFill(D, 'http://someone-else', 10_000), undefined, 'only from the owner named');
    const taken = await b.takeOverFill(D, a.self, 10_000);
    assert.ok(taken && taken.token > first.lease.token, 'a takeover gets a newer token');
    assert.equal(await a.renewFill(first.lease, 10_000), false, 'the old holder is fenced off');
    await a.releaseFill(first.lease);
    assert.equal(await a.fillOwner(D), b.self, 'a stale release does nothing');
    assert.equal(await b.renewFill(taken, 10_000), true);
    await b.releaseFill(taken);
    assert.equal(await a.fillOwner(D), undefined);
  });

  t("a lease not renewed lapses and is anyone's", async ({ a, b }) => {
    const first = await a.acquireFill(D, 300);
    assert.ok('lease' in first);
    await sleep(200);
    assert.equal(await a.renewFill(first.lease, 300), true, 'renewed while bytes arrive');
    await sleep(200);
    assert.deepEqual(await b.acquireFill(D, 300), { owner: a.self }, 'still within the renewed lease');
    await sleep(400);
    const second = await b.acquireFill(D, 10_000);
    assert.ok('lease' in second && second.lease.token > first.lease.token);
  });
}

export function blobHoldersContract(name: string, open: () => Promise<SiteFixture<BlobHolders>>): void {
  const t = suite(`${name} blob holders`, open);

  t('holders are added and removed per replica', async ({ a, b }) => {
    assert.deepEqual(await a.holders(D), []);
    await a.addHolder(D);
    await b.addHolder(D);
    await a.addHolder(D);
    assert.deepEqual((await b.holders(D)).sort(), [a.self, b.self].sort());
    await a.removeHolder(D);
    assert.deepEqual(await b.holders(D), [b.self]);
    const many = Array.from({ length: 1_200 }, (_, i) => `sha256:${i.toString(16).padStart(64, '0')}`);
    await a.addHolders(many);
    assert.deepEqual(await b.holders(many[1_199]!), [a.self]);
  });
}

export function tagRecordsContract(name: string, open: () => Promise<SiteFixture<TagRecords>>): void {
  const t = suite(`${name} tag records`, open);

  t('tag records are shared; one tag check per site until it lapses', async ({ a, b }) => {
    assert.equal(await b.tag('u', 'r', 'v1'), undefined);
    await a.putTag('u', 'r', 'v1', { digest: D, checkedAt: 1_000 });
    assert.deepEqual(await b.tag('u', 'r', 'v1'), { digest: D, checkedAt: 1_000 });
    assert.equal(await b.tag('u', 'other', 'v1'), undefined);
    assert.equal(await a.claimTagCheck('u', 'r', 'v1', 300), true);
    assert.equal(await b.claimTagCheck('u', 'r', 'v1', 300), false);
    assert.equal(await b.claimTagCheck('u', 'r', 'v2', 300), true, 'per tag');
    await sleep(450);
    assert.equal(await b.claimTagCheck('u', 'r', 'v1', 300), true);
  });
}

export function uploadOwnersContract(name: string, open: () => Promise<SiteFixture<UploadOwners>>): void {
  const t = suite(`${name} upload owners`, open);

  t('an upload belongs to the replica that took it until forgotten or lapsed', async ({ a, b }) => {
    await a.recordUpload('u-1', 10_000);
    await b.recordUpload('u-2', 300);
    assert.equal(await b.uploadOwner('u-1'), a.self);
    await b.forgetUpload('u-1');
    assert.equal(await b.uploadOwner('u-1'), a.self, 'only the owner forgets it');
    await a.forgetUpload('u-1');
    assert.equal(await b.uploadOwner('u-1'), undefined);
    await sleep(450);
    assert.equal(await a.uploadOwner('u-2'), undefined);
  });
}
