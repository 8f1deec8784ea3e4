/** @module workers/channel.test — what other workers share reaches this one even when it arrives before the handler is set. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { WorkerChannel, type IpcPort } from './channel.js';

test('shared messages that arrive while the worker is still starting are delivered when it sets its handler', () => {
  const events = new EventEmitter();
  const port: IpcPort = {
    send: () => true,
    on: (event, listener) => events.on(event, listener),
    off: (event, listener) => events.off(event, listener),
  };
  const channel = new WorkerChannel(port, 1, 2);
  events.emit('message', { berth: 'shared', topic: 'breaker', data: { event: 'failure' } });
  events.emit('message', { berth: 'shared', topic: 'login', data: { event: 'fail' } });
  const got: unknown[] = [];
  channel.onShared('breaker', (data) => got.push(data));
  assert.deepEqual(got, [{ event: 'failure' }], 'the early message, and only its own topic');
  events.emit('message', { berth: 'shared', topic: 'breaker', data: { event: 'success' } });
  assert.deepEqual(got, [{ event: 'failure' }, { event: 'success' }]);
  channel.close();
});
