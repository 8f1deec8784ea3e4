/** @module storage/zero-copy.test — sendfile(2) to real HTTP responses: exact bytes, keep-alive, a slow client, a client leaving, a failure mid-way. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { Agent, createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BufferPool, sendRange } from './send.js';
import { loadZeroCopy, plainSocketFd, ZeroCopyError, type ZeroCopy } from './zero-copy.js';

const SIZE = 24 * 1024 * 1024 + 4321;

interface Spy extends ZeroCopy {
  bytes: number;
  calls: number;
}

/** Counts what the kernel moved; `failAfter` calls later it fails the way a filesystem without sendfile would. */
function spy(real: ZeroCopy, failAfter = Infinity): Spy {
  const s: Spy = {
    bytes: 0,
    calls: 0,
    send(socketFd, fileFd, position, count) {
      if (++s.calls > failAfter) throw new ZeroCopyError(22, 'EINVAL');
      const n = real.send(socketFd, fileFd, position, count);
      s.bytes += n;
      return n;
    },
  };
  return s;
}

interface Fixture {
  data: Buffer;
  url: string;
  sends: Promise<unknown>[];
  close(): Promise<void>;
}

/** An HTTP server answering every request with bytes [start, end] of one file (`?start=&end=`), through sendRange. */
async function serve(zeroCopy: ZeroCopy | undefined): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-zero-copy-'));
  const data = randomBytes(SIZE);
  await writeFile(join(dir, 'blob'), data);
  const fh: FileHandle = await open(join(dir, 'blob'), 'r');
  const pool = new BufferPool();
  const sends: Promise<unknown>[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const start = Number(q.get('start') ?? 0);
    const end = Number(q.get('end') ?? SIZE - 1);
    res.setHeader('Content-Length', end - start + 1);
    const sending = sendRange(fh.fd, start, end, res, () => undefined, pool, zeroCopy);
    sends.push(
      sending.then(
        () => 'done',
        (err: Error) => err,
      ),
    );
    sending.catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    data,
    url,
    sends,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await fh.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function fetchBody(url: string, agent?: Agent, pauseMs = 0): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    get(url, { agent }, (res) => {
      const parts: Buffer[] = [];
      if (pauseMs) {
        // A node that reads nothing for a while: the socket fills and sendfile finds no room.
        res.pause();
        setTimeout(() => res.resume(), pauseMs);
      }
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve(Buffer.concat(parts)));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** berth's supported platform is Linux, where koffi ships its binary: failing to load is a fault, not a skip. */
async function mustLoad(): Promise<ZeroCopy> {
  const { zeroCopy, reason } = await loadZeroCopy();
  assert.ok(zeroCopy, reason);
  return zeroCopy;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('sendfile sends whole files and ranges byte for byte, twice over one kept-alive connection', async () => {
  const zeroCopy = await mustLoad();
  const counted = spy(zeroCopy);
  const f = await serve(counted);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (const [start, end] of [
      [0, SIZE - 1],
      [0, SIZE - 1],
      [5, 5],
      [1_000_000, 9_999_999],
    ] as const) {
      const body = await fetchBody(`${f.url}?start=${start}&end=${end}`, agent);
      assert.equal(sha(body), sha(f.data.subarray(start, end + 1)), `bytes ${start}-${end}`);
    }
    assert.deepEqual(await Promise.all(f.sends), ['done', 'done', 'done', 'done']);
    // All but the small writes before each turn went through the kernel.
    const total = 2 * SIZE + 1 + 9_000_000;
    assert.ok(counted.bytes > total * 0.95, `sendfile moved ${counted.bytes} of ${total} bytes`);
  } finally {
    agent.destroy();
    await f.close();
  }
});

test('a client that stops reading for a while still gets every byte', async () => {
  const zeroCopy = await mustLoad();
  const f = await serve(zeroCopy);
  try {
    const bodies = await Promise.all([fetchBody(f.url, undefined, 300), fetchBody(f.url, undefined, 100), fetchBody(f.url)]);
    for (const body of bodies) assert.equal(sha(body), sha(f.data));
  } finally {
    await f.close();
  }
});

test('a client leaving mid-body ends the send with ResponseClosedError and the file stays readable', async () => {
  const zeroCopy = await mustLoad();
  const f = await serve(zeroCopy);
  try {
    await new Promise<void>((resolve, reject) => {
      const req = get(f.url, (res) => {
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got > 2 * 1024 * 1024) req.destroy();
        });
        res.on('close', () => resolve());
      }).on('error', () => resolve());
      req.on('timeout', reject);
    });
    while (f.sends.length === 0) await sleep(5);
    const outcome = (await f.sends[0]) as Error;
    assert.equal((outcome as { code?: string }).code, 'ERR_STREAM_PREMATURE_CLOSE');
    assert.equal(sha(await fetchBody(f.url)), sha(f.data));
  } finally {
    await f.close();
  }
});

test('sendfile failing mid-body (EINVAL) copies the rest: the client sees one whole body', async () => {
  const zeroCopy = await mustLoad();
  const failing = spy(zeroCopy, 2);
  const f = await serve(failing);
  try {
    assert.equal(sha(await fetchBody(f.url, undefined, 50)), sha(f.data));
    assert.ok(failing.bytes > 0 && failing.bytes < SIZE, `sendfile moved ${failing.bytes} bytes before failing`);
    assert.deepEqual(await Promise.all(f.sends), ['done']);
  } finally {
    await f.close();
  }
});

test('responses copy where the kernel must not write the body: TLS, no Content-Length, no TCP handle', () => {
  const tcp = { socket: { _handle: { fd: 7 } }, hasHeader: (h: string) => h === 'content-length' };
  assert.equal(plainSocketFd(tcp as never), 7);
  assert.equal(plainSocketFd({ ...tcp, socket: { encrypted: true, _handle: { fd: 7 } } } as never), undefined);
  assert.equal(plainSocketFd({ ...tcp, hasHeader: () => false } as never), undefined);
  assert.equal(plainSocketFd({ ...tcp, socket: { _handle: null } } as never), undefined);
  assert.equal(plainSocketFd({ ...tcp, socket: { _handle: { fd: -1 } } } as never), undefined);
});

test('off Linux the loader says why instead of failing', async () => {
  const load = await loadZeroCopy('darwin');
  assert.equal(load.zeroCopy, undefined);
  assert.match(load.reason ?? '', /Linux only/);
});
