/**
 * @module e2e/adversarial.test — property-based requests (fast-check) against a real berth with private repositories: no hang, no 5xx for a
 * client's mistake, OCI envelopes, no cross-repository read, bounded memory. Replay a failure with the seed (and path) it prints.
 */
/** @serial bounds the memory of the whole process tree. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { makeTempDir, removeDir, run } from '../fixtures/proc.js';
import { call, digestOf, makeManifest, pushManifest, uploadBlob, OCI_MANIFEST, type TestManifest } from '../fixtures/oci-http.js';
import { basic } from '../fixtures/oci-call.js';
import { answerProblem, describe, leaks, rssMiB, send, type Probe } from '../fixtures/adversarial.js';
import { attackProbe, opsProbe, oversizedPut, v2Probe, type World } from '../fixtures/arbitraries.js';

/** Seeded so a failure replays: ADVERSARIAL_SEED=<seed> ADVERSARIAL_PATH=<path> node --test --test-name-pattern '<test>' dist/test/e2e/adversarial.test.js */
const SEED = Number(process.env['ADVERSARIAL_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const PATH = process.env['ADVERSARIAL_PATH'];
/** An answer later than this is a hang (berth's own slowest honest answer here is a bcrypt check or an upstream 404). */
const ANSWER_WITHIN_MS = 5_000;
/** docs/security.md "Request limits": berth's resident memory after this whole run (one serving process). */
const RSS_BOUND_MIB = 384;

const alicePw = 'alice-edge-pw';
const bobPw = 'bob-edge-pw';

let work: string;
let registry: Registry;
let berth: Berth;
let world: World;
let secretBytes: Buffer;
let rssAtStart: number;
/** Numbers each attack run: its repositories are its own, so a run's outcome does not depend on earlier runs (and shrinks to a true repro). */
let attackRun = 0;

/** Pushes a test manifest and its blobs into berth with the credentials given. */
async function pushAs(repo: string, m: TestManifest, headers: Record<string, string>): Promise<void> {
  for (const b of [m.config, ...m.layers]) await uploadBlob(berth.url, repo, b.data, 'sha256', headers);
  const put = await call(berth.url, 'PUT', `/v2/${repo}/manifests/v1`, { body: m.bytes, headers: { ...headers, 'content-type': OCI_MANIFEST } });
  assert.equal(put.status, 201, put.body.toString());
}

before(async () => {
  work = await makeTempDir('berth-e2e-adversarial-');
  registry = await startRegistry();
  const pub = makeManifest(randomBytes(300), [randomBytes(20_000)]);
  assert.equal((await pushManifest(registry.url, 'public/app', pub, 'v1')).status, 201);
  const htpasswd = path.join(work, 'htpasswd');
  const lines = await Promise.all([run('htpasswd', ['-nbB', '-C', '5', 'alice', alicePw]), run('htpasswd', ['-nbB', '-C', '5', 'bob', bobPw])]);
  await writeFile(htpasswd, `${lines.map((l) => l.stdout.trim()).join('\n')}\n`);
  berth = await startBerth({
    config: {
      version: 0.1,
      log: { accesslog: { disabled: true } },
      storage: { delete: { enabled: true } },
      // One serving process, so its RSS is the whole of berth's memory.
      http: { workers: 1 },
      // pushmode local: the mode in which issue 21 found a cross-repository read.
      proxy: { remoteurl: registry.url, pushmode: 'local' },
      auth: {
        htpasswd: { realm: 'edge', path: htpasswd },
        rules: [
          { users: ['alice'], repositories: ['alice/*'], actions: ['*'] },
          { users: ['bob'], repositories: ['bob/*'], actions: ['*'] },
          { users: ['*', 'anonymous'], repositories: ['public/*'], actions: ['pull'] },
        ],
      },
    },
  });
  const alice = basic('alice', alicePw);
  const bob = basic('bob', bobPw);
  secretBytes = randomBytes(64 * 1024);
  const secret = makeManifest(randomBytes(400), [secretBytes]);
  await pushAs('alice/secret', secret, alice);
  const bobBlob = randomBytes(3000);
  await pushAs('bob/base', makeManifest(randomBytes(200), [bobBlob]), bob);
  const pulled = await call(berth.url, 'GET', `/v2/public/app/manifests/v1`, { headers: { ...bob, accept: OCI_MANIFEST } });
  assert.equal(pulled.status, 200, pulled.body.toString());
  assert.equal((await call(berth.url, 'GET', `/v2/public/app/blobs/${pub.layers[0]!.digest}`, { headers: bob })).status, 200);
  // The rules hold before anything is generated: bob may not read alice's layer.
  assert.equal((await call(berth.url, 'GET', `/v2/alice/secret/blobs/${secret.layers[0]!.digest}`, { headers: bob })).status, 403);
  world = {
    secret: { digest: secret.layers[0]!.digest, size: secretBytes.length },
    secretConfig: { digest: secret.config.digest, size: secret.config.size },
    secretManifest: secret.digest,
    publicManifest: { digest: pub.digest, size: pub.bytes.length },
    publicLayer: { digest: pub.layers[0]!.digest, size: pub.layers[0]!.size },
    bobBlob: { digest: digestOf(bobBlob), size: bobBlob.length },
    auth: {
      alice: alice['authorization']!,
      bob: bob['authorization']!,
      bobWrong: basic('bob', 'guess')['authorization']!,
      unknown: basic('nobody', 'guess')['authorization']!,
      longPassword: basic('bob', `${bobPw}${'x'.repeat(100)}`)['authorization']!,
    },
  };
  rssAtStart = await rssMiB(berth.service.pid);
});

after(async () => {
  // stop() fails the run if berth crashed or logged an uncaught error at any point.
  await berth?.stop();
  await registry?.stop();
  if (work) await removeDir(work);
});

/** Sends the probes in order; throws with the probe and its answer at the first broken invariant. */
async function probe(probes: Probe[], forbidden?: Buffer): Promise<void> {
  for (const p of probes) {
    const r = await send(berth.port, p, ANSWER_WITHIN_MS);
    const problem = answerProblem(p, r);
    if (problem) throw new Error(`${problem}\n  ${describe(p, r)}`);
    if (forbidden && r.status < 300 && leaks(r.body, forbidden)) throw new Error(`cross-repository read of alice/secret's layer\n  ${describe(p, r)}`);
  }
}

/** fc.assert with the file's seed, a bounded number of runs and a time limit (shrinking included); the seed is in every failure. */
async function check<T>(name: string, prop: fc.IAsyncProperty<[T]>, numRuns: number, timeLimitMs: number): Promise<void> {
  try {
    await fc.assert(prop, { seed: SEED, path: PATH, numRuns, interruptAfterTimeLimit: timeLimitMs, includeErrorInReport: true });
  } catch (err) {
    throw new Error(`${name} (replay: ADVERSARIAL_SEED=${SEED}, with the path below as ADVERSARIAL_PATH)\n${(err as Error).message}`);
  }
}

test('cross-repository: whatever bob or an anonymous client mounts, pushes, claims or asks for, no byte of alice/secret comes back', async (t) => {
  t.diagnostic(`seed ${SEED}`);
  await check(
    'cross-repository read',
    fc.asyncProperty(fc.array(attackProbe(world), { minLength: 1, maxLength: 5 }), async (ps) => {
      const run = ++attackRun;
      const own = (p: string) => p.replace(/bob\/([xy])\b/g, `bob/$1-${run}`);
      await probe(
        ps.map((p) => ({ ...p, path: own(p.path) })),
        secretBytes,
      );
      // The read that matters after every sequence, whatever it pushed: the layer under bob's repositories.
      await probe(
        ['bob/x', 'bob/y'].map((repo) => ({
          method: 'GET',
          path: own(`/v2/${repo}/blobs/${world.secret.digest}`),
          headers: { authorization: world.auth.bob },
        })),
        secretBytes,
      );
    }),
    80,
    20_000,
  );
});

test('the /v2/ surface: every generated request is answered in time, a client mistake is a 4xx, every error an OCI envelope', async (t) => {
  t.diagnostic(`seed ${SEED}`);
  await check(
    '/v2/ surface',
    fc.asyncProperty(
      fc.array(fc.oneof({ weight: 9, arbitrary: v2Probe(world) }, { weight: 1, arbitrary: oversizedPut(world) }), { minLength: 1, maxLength: 3 }),
      (ps) => probe(ps, secretBytes),
    ),
    300,
    25_000,
  );
});

test('upload sessions: generated PATCH, PUT, GET and DELETE on a live session are answered in time with a 4xx or success', async (t) => {
  t.diagnostic(`seed ${SEED}`);
  const step = fc.record({
    method: fc.constantFrom('PATCH', 'PUT', 'GET', 'DELETE', 'PATCH'),
    body: fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
    contentRange: fc.constantFrom(undefined, '0-9', '0-0', '5-3', 'bytes=0-9', '0-99999999999999999999', 'x'),
    digest: fc.constantFrom(undefined, 'right', world.secret.digest, 'sha256:bad', `sha256:${'a'.repeat(64)}`),
    chunked: fc.boolean(),
  });
  await check(
    'upload sessions',
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 4 }), async (steps) => {
      const start = await call(berth.url, 'POST', '/v2/bob/up/blobs/uploads/', { headers: { authorization: world.auth.bob } });
      if (start.status !== 202) throw new Error(`upload POST answered ${start.status}: ${start.body.toString()}`);
      let location = start.header('location')!;
      let sent = Buffer.alloc(0);
      for (const s of steps) {
        const url = new URL(location, berth.url);
        if (s.method === 'PUT' && s.digest) url.searchParams.set('digest', s.digest === 'right' ? digestOf(Buffer.concat([sent, s.body])) : s.digest);
        const headers: Record<string, string> = { authorization: world.auth.bob, 'content-type': 'application/octet-stream' };
        if (s.contentRange) headers['content-range'] = s.contentRange;
        const p: Probe = {
          method: s.method,
          path: `${url.pathname}${url.search}`,
          headers,
          body: s.method === 'GET' || s.method === 'DELETE' ? undefined : s.body,
          chunked: s.chunked,
        };
        const r = await send(berth.port, p, ANSWER_WITHIN_MS);
        const problem = answerProblem(p, r);
        if (problem) throw new Error(`${problem}\n  ${describe(p, r)}`);
        if (s.method === 'PATCH' && r.status === 202) {
          sent = Buffer.concat([sent, s.body]);
          location = String(r.headers.location ?? location);
        }
      }
    }),
    120,
    15_000,
  );
});

test('admin API, /metrics, /healthz, /readyz, /ui: generated requests are answered in time, never with a 5xx', async (t) => {
  t.diagnostic(`seed ${SEED}`);
  await check(
    'ops surface',
    fc.asyncProperty(fc.array(opsProbe(world), { minLength: 1, maxLength: 3 }), (ps) => probe(ps)),
    150,
    12_000,
  );
});

test('after the whole run: berth is alive, /healthz 200, resident memory under the documented bound', async () => {
  const health = await send(berth.port, { method: 'GET', path: '/healthz', headers: {} }, ANSWER_WITHIN_MS);
  assert.equal(health.status, 200, describe({ method: 'GET', path: '/healthz', headers: {} }, health));
  const rss = await rssMiB(berth.service.pid);
  assert.ok(rss < RSS_BOUND_MIB, `RSS ${rss.toFixed(0)} MiB after the run (${rssAtStart.toFixed(0)} MiB at the start); bound ${RSS_BOUND_MIB} MiB`);
  process.stderr.write(`adversarial: RSS ${rssAtStart.toFixed(0)} MiB at the start, ${rss.toFixed(0)} MiB at the end\n`);
});
