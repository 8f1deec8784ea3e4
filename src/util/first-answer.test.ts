/** @module util/first-answer.test — deferred start-up work runs after the first response has gone, or after a while without a request, once only; never after stop. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { afterFirstAnswer } from './first-answer.js';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

test('runs once the first response closes, not when its request comes, and only once', async () => {
  const servers = [new EventEmitter(), new EventEmitter()];
  let runs = 0;
  afterFirstAnswer(servers, () => runs++, 60_000);
  const res = new EventEmitter();
  servers[1]!.emit('request', {}, res);
  await tick();
  assert.equal(runs, 0, 'the first answer is still being written');
  res.emit('close');
  await tick();
  assert.equal(runs, 1);
  const again = new EventEmitter();
  servers[0]!.emit('request', {}, again);
  again.emit('close');
  await tick();
  assert.equal(runs, 1, 'once');
  assert.equal(servers[0]!.listenerCount('request') + servers[1]!.listenerCount('request'), 0, 'no listener left');
});

test('without a request it runs after the fallback delay; after stop it never runs', async () => {
  let runs = 0;
  afterFirstAnswer([new EventEmitter()], () => runs++, 10);
  const stop = afterFirstAnswer([new EventEmitter()], () => runs++, 10);
  stop();
  await tick(40);
  assert.equal(runs, 1);
});
