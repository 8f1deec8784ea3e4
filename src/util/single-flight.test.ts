/** @module util/single-flight.test — joining, forgetting on settle, instance ownership. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PromiseFlight, SingleFlight } from './single-flight.js';

test('concurrent runs of one key share one call; the key is free again once it settles', async () => {
  const f = new PromiseFlight<number>();
  let calls = 0;
  let release!: (n: number) => void;
  const work = () => {
    calls++;
    return new Promise<number>((r) => {
      release = r;
    });
  };
  const a = f.runJoined('k', work);
  const b = f.runJoined('k', work);
  assert.equal(a.joined, false);
  assert.equal(b.joined, true);
  await Promise.resolve();
  release(7);
  assert.deepEqual(await Promise.all([a.promise, b.promise]), [7, 7]);
  assert.equal(calls, 1);
  assert.equal(f.size, 0);
  await f.run('k', async () => {
    calls++;
    return 1;
  });
  assert.equal(calls, 2);
});

test('a failed flight rejects every joiner and is forgotten', async () => {
  const f = new PromiseFlight<number>();
  const a = f.run('k', async () => {
    throw new Error('no');
  });
  const b = f.run('k', async () => 1);
  await assert.rejects(a, /no/);
  await assert.rejects(b, /no/);
  assert.equal(await f.run('k', async () => 2), 2);
});

test('two instances never share flights; finish leaves a newer flight alone', () => {
  const one = new SingleFlight<object>();
  const two = new SingleFlight<object>();
  const x = one.claim('k', () => ({}));
  assert.equal(two.claim('k', () => ({})).joined, false);
  one.finish('k', {});
  assert.equal(one.has('k'), true);
  one.finish('k', x.value);
  assert.equal(one.has('k'), false);
});
