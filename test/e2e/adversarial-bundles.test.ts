/**
 * @module e2e/adversarial-bundles.test — property-based hostile calls (fast-check) on the admin API's bundle endpoints of a real berth:
 * every answer in time and a well-formed error or a correct success, no 5xx, no blob in the store whose bytes miss its digest,
 * truncated, slow and concurrent uploads, bounded memory. Replay a failure with the seed (and path) it prints.
 */
/** @serial bounds the memory of the whole process tree. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import fc from 'fast-check';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { LOOPBACK, sleep } from '../fixtures/proc.js';
import { digestOf, OCI_MANIFEST } from '../fixtures/oci-http.js';
import { basic } from '../fixtures/oci-call.js';
import { answerProblem, checkProperty, describe, rssMiB, send, type Probe, type Reply } from '../fixtures/adversarial.js';
import { blobPut, bundlePost, mismatchedBlobs, type BundleWorld } from '../fixtures/bundle-arbitraries.js';

const SEED = Number(process.env['ADVERSARIAL_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const PATH = process.env['ADVERSARIAL_PATH'];
const ANSWER_WITHIN_MS = 5_000;
/** A probe that declares a huge body and sends none waits this long, then gives up (closes). */
const GIVE_UP_MS = 1_000;
/** docs/security.md "Request limits": berth's resident memory after this whole run (one serving process). */
const RSS_BOUND_MIB = 384;

const admin = { username: 'ops', password: 'bundles-under-attack' };
let registry: Registry;
let berth: Berth;
let world: BundleWorld;
let rssAtStart: number;

const adminAuth = basic(admin.username, admin.password)['authorization']!;

async function put(digest: string, body: Buffer): Promise<Reply> {
  return send(
    berth.port,
    { method: 'PUT', path: `/api/v1/bundles/blobs/${digest}`, headers: { authorization: adminAuth, 'content-type': 'application/octet-stream' }, body },
    ANSWER_WITHIN_MS,
  );
}

async function missing(blobs: Array<{ digest: string; size: number }>): Promise<string[]> {
  const body = Buffer.from(JSON.stringify({ blobs }));
  const r = await send(
    berth.port,
    { method: 'POST', path: '/api/v1/bundles/missing', headers: { authorization: adminAuth, 'content-type': 'application/json' }, body },
    ANSWER_WITHIN_MS,
  );
  assert.equal(r.status, 200, r.body.toString());
  return (JSON.parse(r.body.toString()) as { missing: string[] }).missing;
}

before(async () => {
  registry = await startRegistry({ auth: 'none' });
  berth = await startBerth({
    config: { version: 0.1, log: { accesslog: { disabled: true } }, http: { workers: 1 }, admin: { ...admin }, proxy: { remoteurl: registry.url } },
  });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = randomBytes(10_000);
  const blobs = [config, layer].map((b) => ({ digest: digestOf(b), size: b.length }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...blobs[0] },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...blobs[1] }],
    }),
  );
  for (const b of [config, layer, manifest]) assert.equal((await put(digestOf(b), b)).status, 201);
  world = {
    manifest: { digest: digestOf(manifest), size: manifest.length, mediaType: OCI_MANIFEST },
    blobs: [...blobs, { digest: digestOf(manifest), size: manifest.length }],
    auth: {
      admin: adminAuth,
      wrong: ['', basic(admin.username, 'guess')['authorization']!, basic('nobody', admin.password)['authorization']!, 'Basic !!!', 'Bearer x'],
    },
    name: `${registry.host}/xing/adv:v1`,
  };
  rssAtStart = await rssMiB(berth.service.pid);
});

after(async () => {
  await berth?.stop();
  await registry?.stop();
});

const check = <T>(name: string, prop: fc.IAsyncProperty<[T]>, numRuns: number, timeLimitMs: number) =>
  checkProperty(name, { seed: SEED, path: PATH }, prop, numRuns, timeLimitMs);

/** A huge declared body that berth may rightly wait for: the admin's, well-typed, to a well-formed digest. */
function mayWait(p: Probe): boolean {
  let path: string;
  try {
    path = decodeURIComponent(p.path);
  } catch {
    return false;
  }
  return (
    p.declaredLength !== undefined &&
    p.headers['authorization'] === adminAuth &&
    p.headers['content-type'] === 'application/octet-stream' &&
    /^\/api\/v1\/bundles\/blobs\/sha(256:[0-9a-f]{64}|512:[0-9a-f]{128})$/.test(path)
  );
}

async function probe(p: Probe): Promise<void> {
  const r = await send(berth.port, p, p.declaredLength !== undefined && mayWait(p) ? GIVE_UP_MS : ANSWER_WITHIN_MS);
  if (r.failure === 'timeout' && mayWait(p)) return;
  const problem = answerProblem(p, r);
  if (problem) throw new Error(`${problem}\n  ${describe(p, r)}`);
  if (r.status < 300 && p.headers['authorization'] !== adminAuth) throw new Error(`not refused without the admin's credentials\n  ${describe(p, r)}`);
  if (p.method === 'PUT' && r.status < 300) {
    // A success names the blob it holds: the bytes sent, or the same digest stored before (then its bytes were not read).
    const answer = JSON.parse(r.body.toString()) as { digest: string; stored: boolean };
    const [algorithm, hex] = answer.digest.split(':') as [string, string];
    const sent = createHash(algorithm)
      .update(p.body ?? Buffer.alloc(0))
      .digest('hex');
    if (answer.stored && sent !== hex) throw new Error(`stored bytes that are not ${answer.digest}\n  ${describe(p, r)}`);
  }
}

/** Runs generated sequences of probes; afterwards every blob in the store still matches its digest. */
async function probeSequences(name: string, arb: fc.Arbitrary<Probe>, numRuns: number): Promise<void> {
  await check(
    name,
    fc.asyncProperty(fc.array(arb, { minLength: 1, maxLength: 3 }), async (ps) => {
      for (const p of ps) await probe(p);
    }),
    numRuns,
    25_000,
  );
  assert.deepEqual(await mismatchedBlobs(berth.root), []);
}

test('blob PUTs: wrong credentials, malformed digests, bodies that miss their digest, lying lengths: answered in time, never a 5xx, nothing wrong stored', async (t) => {
  t.diagnostic(`seed ${SEED}`);
  await probeSequences('bundle blob PUTs', blobPut(world), 200);
});

test('POST /api/v1/bundles and /missing: malformed JSON, unknown manifests, blobs not present, huge lists: answered in time, never a 5xx', async (t) => {
  t.diagnostic(`seed ${SEED}`);
  await probeSequences('bundle posts', bundlePost(world), 150);
  // The honest import still works after all of it.
  const body = Buffer.from(
    JSON.stringify({
      manifests: [
        { mediaType: OCI_MANIFEST, digest: world.manifest.digest, size: world.manifest.size, annotations: { 'org.opencontainers.image.ref.name': world.name } },
      ],
    }),
  );
  const r = await send(
    berth.port,
    { method: 'POST', path: '/api/v1/bundles', headers: { authorization: adminAuth, 'content-type': 'application/json' }, body },
    ANSWER_WITHIN_MS,
  );
  assert.equal(r.status, 200, r.body.toString());
  assert.deepEqual((JSON.parse(r.body.toString()) as { imported: string[] }).imported, [world.name]);
});

test('an 8 MB body refused before it is read (no credentials, wrong method or type, malformed digest): the client reads the answer, no EPIPE', async () => {
  const big = Buffer.alloc(8 * 1024 * 1024, 0x7b);
  const d = digestOf(big);
  const cases: Array<[Probe, number]> = [
    [{ method: 'DELETE', path: '/api/v1/bundles', headers: { authorization: adminAuth, 'content-type': 'application/json' } }, 405],
    [{ method: 'POST', path: '/api/v1/bundles', headers: { 'content-type': 'application/json' } }, 401],
    [{ method: 'PUT', path: `/api/v1/bundles/blobs/${d}`, headers: { 'content-type': 'application/octet-stream' } }, 401],
    [{ method: 'PUT', path: `/api/v1/bundles/blobs/${d}`, headers: { authorization: adminAuth, 'content-type': 'text/plain' } }, 415],
    [
      { method: 'PUT', path: `/api/v1/bundles/blobs/${d.toUpperCase()}`, headers: { authorization: adminAuth, 'content-type': 'application/octet-stream' } },
      400,
    ],
    [{ method: 'DELETE', path: '/v2/xing/adv/manifests/v1', headers: {} }, 400],
  ];
  for (const [p, status] of cases)
    for (let i = 0; i < 5; i++) {
      const r = await send(berth.port, { ...p, body: big }, ANSWER_WITHIN_MS);
      assert.equal(r.status, status, describe({ ...p, body: Buffer.alloc(0) }, r));
    }
  assert.deepEqual(await missing([{ digest: d, size: big.length }]), [d]);
});

/** Sends a PUT head declaring `declared` bytes, then `parts` with `pauseMs` between them, then (`close`) ends its side; resolves with the status line, or '' when the connection closed without one. */
function rawPut(digest: string, declared: number, parts: Buffer[], pauseMs: number, close: boolean): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(berth.port, LOOPBACK);
    let got = '';
    socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? ''));
    const write = async (): Promise<void> => {
      socket.write(
        `PUT /api/v1/bundles/blobs/${digest} HTTP/1.1\r\nHost: berth\r\nAuthorization: ${adminAuth}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${declared}\r\nConnection: close\r\n\r\n`,
      );
      for (const [i, part] of parts.entries()) {
        if (i > 0) await sleep(pauseMs);
        if (!socket.destroyed) socket.write(part);
      }
      // A client that sent the whole body waits for the answer (node's server drops a request whose client half-closes).
      if (close) socket.end();
    };
    socket.on('connect', () => void write());
  });
}

test('truncated bodies (the client stops and closes) leave nothing stored; slow bodies are stored whole', async (t) => {
  t.diagnostic(`seed ${SEED}`);
  await check(
    'truncated and slow bodies',
    fc.asyncProperty(
      fc.record({ size: fc.integer({ min: 2, max: 300_000 }), cut: fc.double({ min: 0, max: 0.99, noNaN: true }), slow: fc.boolean() }),
      async ({ size, cut, slow }) => {
        const body = randomBytes(size);
        const d = digestOf(body);
        if (slow) {
          const thirds = [body.subarray(0, size / 3), body.subarray(size / 3, (2 * size) / 3), body.subarray((2 * size) / 3)];
          const status = await rawPut(d, size, thirds, 300, false);
          if (status !== '201') throw new Error(`a slow, whole body of ${size} B was answered ${status || 'nothing'}`);
          if ((await missing([{ digest: d, size }])).length !== 0) throw new Error(`a slow body of ${size} B answered 201 but is not held`);
        } else {
          const status = await rawPut(d, size, [body.subarray(0, Math.floor(size * cut))], 0, true);
          if (status !== '' && !status.startsWith('4')) throw new Error(`a truncated body was answered ${status}`);
          if ((await missing([{ digest: d, size }])).length !== 1) throw new Error(`a body cut at ${Math.floor(size * cut)} of ${size} B was stored`);
        }
      },
    ),
    20,
    20_000,
  );
  assert.deepEqual(await mismatchedBlobs(berth.root), []);
});

test('concurrent PUTs of one digest, right and wrong bodies: the right ones succeed, the wrong ones are refused, the blob stored is the right one', async (t) => {
  t.diagnostic(`seed ${SEED}`);
  await check(
    'concurrent PUTs',
    fc.asyncProperty(
      fc.record({ size: fc.integer({ min: 1, max: 500_000 }), rights: fc.integer({ min: 2, max: 6 }), wrongs: fc.integer({ min: 0, max: 3 }) }),
      async ({ size, rights, wrongs }) => {
        const body = randomBytes(size);
        const d = digestOf(body);
        const bad = Buffer.from(body.map((x, i) => (i === size - 1 ? x ^ 1 : x)));
        const answers = await Promise.all([...Array.from({ length: rights }, () => put(d, body)), ...Array.from({ length: wrongs }, () => put(d, bad))]);
        for (const [i, r] of answers.entries()) {
          const p: Probe = { method: 'PUT', path: `/api/v1/bundles/blobs/${d}`, headers: {} };
          const problem = answerProblem(p, r);
          if (problem) throw new Error(`${problem}\n  ${describe(p, r)}`);
          if (i < rights && r.status !== 200 && r.status !== 201) throw new Error(`a right body was answered ${describe(p, r)}`);
          if (i >= rights && r.status !== 400 && r.status !== 200) throw new Error(`a wrong body was answered ${describe(p, r)}`);
        }
        if (!answers.slice(0, rights).some((r) => r.status === 201)) throw new Error('no PUT of the right body stored it');
      },
    ),
    30,
    20_000,
  );
  assert.deepEqual(await mismatchedBlobs(berth.root), []);
});

test('after the whole run: berth is alive, /healthz 200, resident memory under the documented bound, every stored blob matches its digest', async () => {
  const health = await send(berth.port, { method: 'GET', path: '/healthz', headers: {} }, ANSWER_WITHIN_MS);
  assert.equal(health.status, 200);
  const rss = await rssMiB(berth.service.pid);
  assert.ok(rss < RSS_BOUND_MIB, `RSS ${rss.toFixed(0)} MiB after the run (${rssAtStart.toFixed(0)} MiB at the start); bound ${RSS_BOUND_MIB} MiB`);
  process.stderr.write(`adversarial-bundles: RSS ${rssAtStart.toFixed(0)} MiB at the start, ${rss.toFixed(0)} MiB at the end\n`);
  assert.deepEqual(await mismatchedBlobs(berth.root), []);
});
