/** @module ports/contract/fills-contract — the contract every fill coordinator must meet: one filler per digest, followers join it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FillCoordinator } from '../fills.js';

export function fillCoordinatorContract(name: string, open: () => FillCoordinator<{ id: number }>): void {
  test(`${name} fill coordinator: the first claim fills, later ones follow until it finishes`, () => {
    const fills = open();
    let started = 0;
    const start = () => ({ id: ++started });
    const a = fills.claim('sha256:a', start);
    const b = fills.claim('sha256:a', start);
    assert.equal(a.role, 'filler');
    assert.equal(b.role, 'follower');
    assert.equal(b.fill, a.fill);
    assert.equal(started, 1);
    assert.equal(fills.current('sha256:a'), a.fill);
    assert.deepEqual(fills.digests(), ['sha256:a']);
    assert.equal(fills.size, 1);
    fills.finish('sha256:a', { id: 99 });
    assert.equal(fills.current('sha256:a'), a.fill, "finishing someone else's fill does nothing");
    fills.finish('sha256:a', a.fill);
    assert.equal(fills.current('sha256:a'), undefined);
    assert.equal(fills.claim('sha256:a', start).role, 'filler', 'after it finished, a claim starts afresh');
    assert.equal(started, 2);
  });
}
