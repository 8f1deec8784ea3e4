/** @module util/undici.test — the Agent created at its first request: requests through it (composed or not), and close/destroy before and after use. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Dispatcher } from 'undici';
import { Agent, request } from './undici.js';

async function server(): Promise<{ url: string; srv: Server }> {
  const srv = createServer((req, res) => res.end(`${req.method} ${req.url}`));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, srv };
}

test('an Agent never used closes and is destroyed at once, in both of undici’s forms', async () => {
  await new Agent().close();
  await new Agent().destroy();
  await new Promise<void>((r) => new Agent().close(r));
  await new Promise<void>((r) => new Agent().destroy(null, r));
});

test('requests go through an Agent, plain and composed with an interceptor, and it closes after use', async () => {
  const { url, srv } = await server();
  try {
    const agent = new Agent({ headersTimeout: 5000 });
    const res = await request(`${url}/v2/?n=1`, { dispatcher: agent });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'GET /v2/?n=1');
    let seen = 0;
    const counting: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => {
      seen++;
      return dispatch(opts, handler);
    };
    const composed = new Agent().compose(counting);
    const res2 = await request(`${url}/x`, { dispatcher: composed, method: 'HEAD' });
    assert.equal(res2.statusCode, 200);
    await res2.body.dump();
    assert.equal(seen, 1);
    await agent.close();
    await composed.destroy();
  } finally {
    srv.close();
  }
});
