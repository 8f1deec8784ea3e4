/** @module http/linger.test — an early answer on a closing connection reaches a client still sending its body (no reset); a body declared over the bound is not waited for. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { LINGER_BYTES } from './linger.js';

let server: ChildProcess;
let port: number;

/** A server in its own process (in this one, the client could never outrun it): it answers 401 without reading the body, as a refusal does. */
const SERVER = `
import http from 'node:http';
const { lingerOnEarlyAnswer } = await import(process.argv[1]);
const { readJsonBody } = await import(process.argv[2]);
const server = http.createServer(async (req, res) => {
  lingerOnEarlyAnswer(req, res);
  if (req.url === '/json') {
    // Reads until the 1 MiB limit stops it, as every admin and hub route does.
    const status = await readJsonBody(req).then(() => 200, (err) => err.status);
    res.end(String(status));
    return;
  }
  res.statusCode = 401;
  res.setHeader('Content-Type', 'application/json');
  res.end('{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}');
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

before(async () => {
  server = spawn(
    process.execPath,
    ['--input-type=module', '-e', SERVER, new URL('./linger.js', import.meta.url).href, new URL('./admin-io.js', import.meta.url).href],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const [line] = (await once(server.stdout!, 'data')) as [Buffer];
  port = Number(line.toString().trim());
});

after(() => {
  server.kill();
});

/** A client that asked to close (as agent: false does) and sends `size` bytes of body; resolves with the status or the error. */
function putBody(size: number): Promise<string> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/x', agent: false, headers: { 'content-length': String(size) } });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
    });
    req.on('error', (err) => resolve(err.message));
    req.end(Buffer.alloc(size, 1));
  });
}

test('a client still sending its body reads the early answer: no EPIPE or reset', async () => {
  const answers = [];
  for (let i = 0; i < 12; i++) answers.push(await putBody(8 * 1024 * 1024));
  assert.deepEqual(answers, Array(12).fill('401'));
});

test('a body declared over the bound is not waited for: the answer comes and the connection closes at once', async () => {
  const closed = await new Promise<{ status: string; ms: number }>((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ status: got.slice(9, 12), ms: Date.now() - started }));
    socket.write(`PUT /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${LINGER_BYTES + 1}\r\n\r\n`);
  });
  assert.equal(closed.status, '401');
  assert.ok(closed.ms < 5_000, `closed after ${closed.ms} ms`);
});

test('a client that stops sending after the answer is let go when it closes, not held to the bound', async () => {
  const closed = await new Promise<{ status: string; ms: number }>((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      // The answer is in: the client gives up on its body.
      if (got.includes('UNAUTHORIZED')) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ status: got.slice(9, 12), ms: Date.now() - started }));
    socket.write(`PUT /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000000\r\n\r\nabc`);
  });
  assert.equal(closed.status, '401');
  assert.ok(closed.ms < 5_000, `closed after ${closed.ms} ms`);
});

test('a kept-alive connection whose JSON body passed the limit answers 413, then the next request on it (no stall on the unread rest)', async () => {
  const got = await new Promise<string>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if ((text.match(/HTTP\/1\.1 /g) ?? []).length === 2 && text.endsWith('UNAUTHORIZED","message":"no"}]}')) socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(text));
    const body = Buffer.alloc(3 * 1024 * 1024, 0x20);
    socket.write(`POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    socket.write(body);
    socket.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
    setTimeout(() => socket.destroy(), 5_000).unref();
  });
  assert.match(got, /\r\n\r\n413/);
  assert.match(got, /HTTP\/1\.1 401 /, 'the second request was answered');
});
