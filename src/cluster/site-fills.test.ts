/** @module cluster/site-fills.test — the fill rule: rendezvous hashing spreads digests over live replicas and moves only a dead one's share. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { electFiller } from './site-fills.js';

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
