/** @module cluster/site-ranges.test — where a replica's range of a cold blob comes from: the replica elected for the digest, or here (elected itself, the site unavailable, the elected one failing: passed over for a while). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { LocalSite } from './local-site.js';
import { PeerError, type PeerClient } from './peer-client.js';
import { SHUN_MS, SiteFills, electFiller } from './site-fills.js';
import type { RepositoryTarget } from '../ports/repository-target.js';

const target = { key: 'central', repository: 'lib/app' } as unknown as RepositoryTarget;
const members = ['http://a:5000', 'http://b:5000', 'http://c:5000'];
/** A digest replica A is not elected for, and its elected replica. */
const digest = Array.from({ length: 50 }, (_, i) => `sha256:${i.toString(16).padStart(64, '0')}`).find((d) => electFiller(d, members) !== members[0])!;
const elected = electFiller(digest, members)!;

function replica(self: string, live: () => ReadonlySet<string> | undefined, failing: () => boolean) {
  let clock = 1_000_000;
  const asked: string[] = [];
  const peers = {
    range: async (peer: string, upstream: string, repository: string, d: string, start: number, end: number) => {
      asked.push(`${peer} ${upstream}/${repository} ${d === digest ? 'D' : d} ${start}-${end}`);
      if (failing()) throw new PeerError(`peer ${peer}: connect ECONNREFUSED`);
      return (async function* () {
        yield Buffer.alloc(end - start + 1, 7);
      })();
    },
  } as unknown as PeerClient;
  const fills = new SiteFills({
    site: new LocalSite(self, () => clock),
    peers,
    live,
    logger: pino({ level: 'silent' }),
    now: () => clock,
    sleep: async () => undefined,
    leaseMs: 5_000,
    waitMs: 1_000,
  });
  return { fills, asked, advance: (ms: number) => (clock += ms) };
}

async function length(body: AsyncIterable<Uint8Array> | undefined): Promise<number | undefined> {
  if (!body) return undefined;
  let n = 0;
  for await (const c of body) n += c.length;
  return n;
}

test('a range is asked of the replica elected for its digest, with the repository it is read for', async () => {
  const a = replica(
    members[0]!,
    () => new Set(members),
    () => false,
  );
  assert.equal(await length(await a.fills.range({ target, digest, start: 100, end: 1123 })), 1024);
  assert.deepEqual(a.asked, [`${elected} central/lib/app D 100-1123`]);
});

test('the elected replica itself, or a replica without the site (Redis away), fetches the range here', async () => {
  const self = replica(
    elected,
    () => new Set(members),
    () => false,
  );
  assert.equal(await self.fills.range({ target, digest, start: 0, end: 9 }), undefined);
  const alone = replica(
    members[0]!,
    () => undefined,
    () => false,
  );
  assert.equal(await alone.fills.range({ target, digest, start: 0, end: 9 }), undefined);
  assert.deepEqual([...self.asked, ...alone.asked], [], 'no peer asked');
});

test('an elected replica that fails is passed over for a while (fetched here), then asked again', async () => {
  let failing = true;
  const a = replica(
    members[0]!,
    () => new Set(members),
    () => failing,
  );
  assert.equal(await a.fills.range({ target, digest, start: 0, end: 9 }), undefined, 'its failure means: fetch here');
  assert.equal(await a.fills.range({ target, digest, start: 10, end: 19 }), undefined);
  assert.equal(a.asked.length, 1, 'not asked again at once');
  failing = false;
  a.advance(SHUN_MS + 1);
  assert.equal(await length(await a.fills.range({ target, digest, start: 20, end: 29 })), 10);
  assert.equal(a.asked.length, 2);
});
