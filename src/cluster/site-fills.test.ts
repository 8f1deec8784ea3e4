/** @module cluster/site-fills.test — the fill rule (rendezvous spread) and the choice of source: live holder, lease takeover from a dead filler, upstream when coordination fails. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { electFiller, SiteFills } from './site-fills.js';
import { pino } from 'pino';
import { LocalSite, LocalSiteBackend } from './local-site.js';
import { PeerError, type PeerClient } from './peer-client.js';
import type { RepositoryTarget } from '../ports/repository-target.js';

const digests = Array.from({ length: 600 }, (_, i) => `sha256:${i.toString(16).padStart(64, '0')}`);

test('each live replica is elected for about a third of the digests; without one, only its share moves', () => {
  const three = ['http://a:5000', 'http://b:5000', 'http://c:5000'];
  const counts = new Map<string, number>();
  for (const d of digests) {
    const e = electFiller(d, three)!;
    counts.set(e, (counts.get(e) ?? 0) + 1);
  }
  for (const m of three) assert.ok((counts.get(m) ?? 0) > 150, `${m} elected ${counts.get(m)} of 600`);
  for (const d of digests) {
    const before = electFiller(d, three);
    const after = electFiller(d, three.slice(1));
    if (before !== three[0]) assert.equal(after, before, "a survivor's digests stay where they were");
  }
  assert.equal(electFiller(digests[0]!, []), undefined);
  assert.equal(electFiller(digests[0]!, [...three].reverse()), electFiller(digests[0]!, three), 'order does not matter');
});

const D = `sha256:${'b'.repeat(64)}`;
const target = { key: 'u', repository: 'r', upstream: undefined } as unknown as RepositoryTarget;

/** A router for replica `self`, peers answering from `serving` (url -> bytes, or an error). */
function router(self: string, backend: LocalSiteBackend, serving: Record<string, string | Error>, live: string[]) {
  const site = new LocalSite(self, Date.now, backend);
  const asked: string[] = [];
  const peers = {
    open: async (peer: string, _u: string, _r: string, _d: string, offset: number) => {
      asked.push(peer);
      const v = serving[peer];
      if (v === undefined || v instanceof Error) throw new PeerError(`peer ${peer} down`);
      return {
        body: (async function* () {
          yield Buffer.from(v.slice(offset));
        })(),
        size: v.length,
      };
    },
  } as unknown as PeerClient;
  const fills = new SiteFills({
    site,
    peers,
    live: () => new Set(live),
    logger: pino({ level: 'silent' }),
    now: Date.now,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    leaseMs: 5_000,
    waitMs: 2_000,
  });
  return { site, fills, asked };
}

async function read(body: AsyncIterable<Uint8Array>): Promise<string> {
  let s = '';
  for await (const c of body) s += Buffer.from(c).toString();
  return s;
}

const open = (
  fills: SiteFills,
  offset = 0,
  upstream = async () =>
    (async function* () {
      yield Buffer.from('upstream');
    })(),
) =>
  fills.open({
    target,
    digest: D,
    offset,
    fromPeer: false,
    upstream,
    markReady: () => undefined,
    tempPath: '',
    size: () => undefined,
    visible: async () => undefined,
  });

test("a dead holder is skipped for a live one; a dead filler's lease is taken over and the upstream read from the offset", async () => {
  const backend = new LocalSiteBackend();
  const a = new LocalSite('http://a', Date.now, backend);
  const b = new LocalSite('http://b', Date.now, backend);
  await a.addHolder(D);
  await b.addHolder(D);
  const c = router('http://c', backend, { 'http://a': new Error('gone'), 'http://b': 'from-b' }, ['http://a', 'http://b', 'http://c']);
  assert.equal(await read(await open(c.fills)), 'from-b');

  const fresh = new LocalSiteBackend();
  const dead = new LocalSite('http://dead', Date.now, fresh);
  assert.ok('lease' in (await dead.acquireFill(D, 60_000)));
  const s = router('http://s', fresh, {}, ['http://s']);
  let from = -1;
  const body = await open(s.fills, 7, async (offset = 0) => {
    from = offset;
    return (async function* () {
      yield Buffer.from('rest');
    })();
  });
  assert.equal(await read(body), 'rest');
  assert.equal(from, 7, 'resumed from the bytes it has');
  assert.equal(await s.site.fillOwner(D), 'http://s', 'the survivor holds the lease now');
  s.fills.finished(D);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(await s.site.fillOwner(D), undefined, 'released when the fill ends');
});

test('coordination failing (Redis away) means the upstream, never an error', async () => {
  const site = new LocalSite('http://x', Date.now);
  site.holders = async () => {
    throw new Error('redis down');
  };
  const fills = new SiteFills({
    site,
    peers: {} as PeerClient,
    live: () => new Set(['http://x', 'http://y']),
    logger: pino({ level: 'silent' }),
    now: Date.now,
    sleep: async () => undefined,
    leaseMs: 5_000,
    waitMs: 1_000,
  });
  assert.equal(await read(await open(fills)), 'upstream');
  const alone = new SiteFills({
    site,
    peers: {} as PeerClient,
    live: () => undefined,
    logger: pino({ level: 'silent' }),
    now: Date.now,
    sleep: async () => undefined,
    leaseMs: 5_000,
    waitMs: 1_000,
  });
  assert.equal(await read(await open(alone)), 'upstream');
});

test('a replica whose view of the site is stale still follows a filler or holder that just joined, never a second upstream copy', async () => {
  const backend = new LocalSiteBackend();
  const b = new LocalSite('http://b', Date.now, backend);
  await b.heartbeat(60_000);
  assert.ok('lease' in (await b.acquireFill(D, 60_000)));
  // A's last heartbeat saw only itself: B joined after it.
  const a = router('http://a', backend, { 'http://b': 'from-b' }, ['http://a']);
  let upstream = 0;
  const body = await open(a.fills, 0, async () => {
    upstream++;
    return (async function* () {
      yield Buffer.from('upstream');
    })();
  });
  assert.equal(await read(body), 'from-b');
  assert.equal(upstream, 0);
  assert.equal(await a.site.fillOwner(D), 'http://b', "B's lease was not taken over");

  await b.addHolder(D);
  await b.releaseFill({ digest: D, owner: 'http://b', token: backend.token });
  const c = router('http://c', backend, { 'http://b': 'held-by-b' }, ['http://c']);
  assert.equal(await read(await open(c.fills)), 'held-by-b');
});

test('a filler that finishes between the look at the holders and the lease is read from, not fetched again upstream', async () => {
  const backend = new LocalSiteBackend();
  const b = new LocalSite('http://b', Date.now, backend);
  await b.heartbeat(60_000);
  assert.ok('lease' in (await b.acquireFill(D, 60_000)));
  // A's view elects A itself, so only the holders and the lease decide.
  const a = router('http://a', backend, { 'http://b': 'held-by-b' }, ['http://a']);
  // B finishes right after A found no holder: it adds itself as a holder, then releases its lease.
  const look = a.site.holders.bind(a.site);
  let looks = 0;
  a.site.holders = async (digest: string) => {
    const found = await look(digest);
    if (looks++ === 0) {
      await b.addHolder(D);
      await b.releaseFill({ digest: D, owner: 'http://b', token: backend.token });
    }
    return found;
  };
  let upstream = 0;
  const body = await open(a.fills, 0, async () => {
    upstream++;
    return (async function* () {
      yield Buffer.from('upstream');
    })();
  });
  assert.equal(await read(body), 'held-by-b');
  assert.equal(upstream, 0, 'no second upstream copy');
  assert.equal(await a.site.fillOwner(D), undefined, 'the lease taken for nothing is given back');
});
