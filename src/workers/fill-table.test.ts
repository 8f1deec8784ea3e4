/** @module workers/fill-table.test — the primary's fill table: one filler per digest, notices to followers, a dead worker's fills handed on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FillTable } from './fill-table.js';

const D = 'sha256:aa';

test('the first worker to claim fills; the others follow its temp file and hear when its upstream answered', () => {
  const t = new FillTable();
  assert.deepEqual(t.claim(1, D, '/tmp/one'), { role: 'filler' });
  assert.deepEqual(t.claim(2, D, '/tmp/two'), { role: 'follower', owner: 1, tempPath: '/tmp/one', ready: false, size: null });
  assert.deepEqual(t.ready(2, D, 10), [], 'only the filler reports readiness');
  assert.deepEqual(t.ready(1, D, 10), [{ worker: 2, kind: 'ready', digest: D, size: 10 }]);
  assert.deepEqual(t.claim(3, D, '/tmp/three'), { role: 'follower', owner: 1, tempPath: '/tmp/one', ready: true, size: 10 });
  assert.equal(t.size, 1);
  assert.ok(t.filling(D));
});

test("the filler's own retry keeps its claim and its followers", () => {
  const t = new FillTable();
  t.claim(1, D, '/tmp/one');
  t.claim(2, D, '/tmp/two');
  assert.deepEqual(t.claim(1, D, '/tmp/one'), { role: 'filler' });
  assert.deepEqual(t.finish(1, D), [{ worker: 2, kind: 'end', digest: D, size: null }]);
});

test('finish ends the fill for its followers (not for those that left); a later claim starts afresh', () => {
  const t = new FillTable();
  t.claim(1, D, '/tmp/one');
  t.claim(2, D, '/tmp/two');
  t.claim(3, D, '/tmp/three');
  t.unfollow(3, D);
  assert.deepEqual(t.finish(2, D), [], 'a follower cannot finish the fill');
  t.ready(1, D, 5);
  assert.deepEqual(t.finish(1, D), [{ worker: 2, kind: 'end', digest: D, size: 5 }]);
  assert.equal(t.filling(D), false);
  assert.deepEqual(t.claim(2, D, '/tmp/two'), { role: 'filler' });
});

test("a dead worker's fills end for their followers, one of whom then claims the fill; its temp file is an orphan", () => {
  const t = new FillTable();
  t.claim(1, D, '/tmp/one');
  t.claim(1, 'sha256:bb', '/tmp/one-b');
  t.claim(2, D, '/tmp/two');
  t.claim(3, D, '/tmp/three');
  t.claim(2, 'sha256:cc', '/tmp/two-c');
  t.claim(1, 'sha256:cc', '/tmp/one-c');
  const { notices, orphans } = t.gone(1);
  assert.deepEqual(orphans.sort(), ['/tmp/one', '/tmp/one-b']);
  assert.deepEqual(
    notices.map((n) => [n.worker, n.digest]),
    [
      [2, D],
      [3, D],
    ],
  );
  assert.deepEqual(t.claim(3, D, '/tmp/three'), { role: 'filler' }, 'a follower takes the fill over');
  assert.deepEqual(t.claim(2, D, '/tmp/two'), { role: 'follower', owner: 3, tempPath: '/tmp/three', ready: false, size: null });
  assert.deepEqual(t.finish(2, 'sha256:cc'), [], 'the dead worker no longer follows what it followed');
});
