/** @module e2e/hostile-connections.test — silent and refused sockets give their connection slot back; Expect: 100-continue gets a refusal before any 100. */
/** @serial counts sockets against header and idle timeouts. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { readdir, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { LOOPBACK, run, waitFor } from '../fixtures/proc.js';
import { fromAddress, holdHalfOpen, rawBody, type HeldSocket } from '../fixtures/hostile.js';

let berth: Berth;
const HEADERS_TIMEOUT_S = 2;

before(async () => {
  // One process (connection bounds count per worker); the default http.idletimeout (5 min) stays,
  // so nothing but the header timeout and what follows it can free the held slots in time.
  berth = await startBerth({ config: { version: 0.1, http: { headerstimeout: `${HEADERS_TIMEOUT_S}s`, maxconnections: 64, workers: 1 } } });
});

after(async () => {
  await berth?.stop();
});

/** Sockets the berth process holds open (listener included), from its own descriptor table. */
async function socketFds(pid: number): Promise<number> {
  const fds = await readdir(`/proc/${pid}/fd`);
  const links = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return links.filter((l) => l.startsWith('socket:')).length;
}

const status = async (localAddress: string) => {
  try {
    return (await fromAddress(`${berth.url}/v2/`, { localAddress })).status;
  } catch {
    return 0;
  }
};

test('4 addresses x 16 silent sockets fill http.maxconnections only until http.headerstimeout: then a fifth address and the four are served, and berth holds none of them', async () => {
  const baseline = await socketFds(berth.service.pid);
  const held: HeldSocket[] = [];
  try {
    // Connect and send nothing; never close, not even after berth's FIN.
    for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'])
      held.push(...(await holdHalfOpen(berth.port, 16, address, { opening: '', keepOpen: true })));
    // The hold bites: all 64 slots are taken.
    assert.equal(await status('127.0.0.6'), 503);
    await waitFor(() => held.every((h) => h.received.startsWith('HTTP/1.1 408')), (HEADERS_TIMEOUT_S + 5) * 1000, {
      what: 'every silent socket to be answered 408',
    });
    await waitFor(async () => (await socketFds(berth.service.pid)) <= baseline, 5_000, { what: 'berth to let go of the silent sockets' });
    for (const address of ['127.0.0.6', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) assert.equal(await status(address), 200, address);
    // Berth's side in the kernel: none of them still owned by the process, half-closed or otherwise.
    const owned = (await run('ss', ['-tanpH', 'state', 'all', `( sport = :${berth.port} )`])).stdout
      .split('\n')
      .filter((l) => l.includes(`pid=${berth.service.pid},`) && !l.startsWith('LISTEN'));
    assert.deepEqual(owned, [], 'no connection of the hold left in berth');
  } finally {
    held.forEach((h) => h.socket.destroy());
  }
});

/** Sends `head`, then collects what comes back until `until` matches it or the server closes. */
function exchange(head: string, until: RegExp, body?: (socket: net.Socket, got: string) => void): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(berth.port, LOOPBACK);
    let got = '';
    let bodySent = false;
    const timer = setTimeout(() => s.destroy(), 15_000);
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    s.on('connect', () => s.write(head));
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (body && !bodySent && /^HTTP\/1\.1 100 /.test(got)) {
        bodySent = true;
        body(s, got);
      }
      if (until.test(got)) done();
    });
    s.on('error', () => undefined);
    s.on('close', done);
  });
}

test('Expect: 100-continue over a limit gets the 413 envelope first and alone; within limits the 100 comes, then the answer', async () => {
  const refusals = [
    ['PUT /v2/big/app/manifests/v1', 'application/vnd.oci.image.manifest.v1+json', 413, 'MANIFEST_INVALID'],
    // Refused by the upload's own check (no such session), still before any byte of the body.
    ['PATCH /v2/big/app/blobs/uploads/00000000-0000-4000-8000-000000000000', 'application/octet-stream', 404, 'BLOB_UPLOAD_UNKNOWN'],
  ] as const;
  for (const [line, type, code, error] of refusals) {
    const refused = await exchange(
      `${line} HTTP/1.1\r\nHost: berth\r\nContent-Type: ${type}\r\nContent-Length: ${50 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n`,
      /\r\n\r\n\{.*\}$/s,
    );
    assert.match(refused.split('\r\n')[0]!, new RegExp(`^HTTP/1\\.1 ${code} `), line);
    assert.ok(!refused.includes('100 Continue'), refused.slice(0, 200));
    assert.match(refused, /\r\nConnection: close\r\n/i, 'the body the client held back is not read as its next request');
    assert.equal((rawBody(refused)['errors'] as Array<{ code: string }>)[0]?.code, error);
  }

  const blob = randomBytes(64 * 1024);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const accepted = await exchange(
    `POST /v2/big/app/blobs/uploads/?digest=${digest} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/octet-stream\r\nContent-Length: ${blob.length}\r\nExpect: 100-continue\r\n\r\n`,
    /HTTP\/1\.1 201 [^]*\r\n\r\n/,
    (s) => s.write(blob),
  );
  assert.match(accepted, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 /);
  assert.equal((await fromAddress(`${berth.url}/v2/big/app/blobs/${digest}`)).body.equals(blob), true);

  // curl sends Expect: 100-continue for a large body and waits for the 100 before sending it.
  const big = randomBytes(3 * 1024 * 1024);
  const bigDigest = `sha256:${createHash('sha256').update(big).digest('hex')}`;
  const file = path.join(berth.dir, 'big.bin');
  await writeFile(file, big);
  const out = await run('curl', [
    ...['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--expect100-timeout', '120', '-H', 'Expect: 100-continue'],
    ...['-H', 'Content-Type: application/octet-stream', '--data-binary', `@${file}`, `${berth.url}/v2/big/app/blobs/uploads/?digest=${bigDigest}`],
  ]);
  assert.equal(out.stdout, '201');
});
