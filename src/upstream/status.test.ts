/**
 * @module upstream/status.test — one mapper for upstream answers: the OCI error and whether it is
 * transient, per status, for a pull, a push and the completion of an upload in chunks.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { loadConfig } from '../config/load.js';
import { OciError, UnreachableError, isTransient, upstreamStatusError } from '../oci/errors.js';
import { RegistryClient } from './client.js';
import { getBlob, putManifest } from './registry-api.js';
import { uploadInChunks } from './upload.js';

const digest = `sha256:${'a'.repeat(64)}`;
const blobUnknown = () => new OciError('BLOB_UNKNOWN', `blob ${digest} is not known`);

interface Row {
  readonly status: number;
  /** The upstream's OCI envelope code; none for an HTML or empty body. */
  readonly body?: string;
  /** Expected code, HTTP status and transience: for a pull, and for a push (also the chunked completion). */
  readonly pull: readonly [string, number, boolean];
  readonly push: readonly [string, number, boolean];
}

// A 4xx from the centre is a refusal (permanent); 5xx, 429 and the network are waited out.
const TABLE: readonly Row[] = [
  { status: 400, body: 'DIGEST_INVALID', pull: ['DIGEST_INVALID', 400, false], push: ['DIGEST_INVALID', 400, false] },
  { status: 401, body: 'UNAUTHORIZED', pull: ['UNAUTHORIZED', 401, false], push: ['UNAUTHORIZED', 401, false] },
  { status: 403, body: 'DENIED', pull: ['DENIED', 403, false], push: ['DENIED', 403, false] },
  { status: 404, body: 'BLOB_UPLOAD_UNKNOWN', pull: ['BLOB_UNKNOWN', 404, false], push: ['BLOB_UPLOAD_UNKNOWN', 404, false] },
  { status: 413, pull: ['UNSUPPORTED', 413, false], push: ['UNSUPPORTED', 413, false] },
  { status: 429, body: 'TOOMANYREQUESTS', pull: ['TOOMANYREQUESTS', 429, true], push: ['TOOMANYREQUESTS', 429, true] },
  { status: 500, body: 'UNKNOWN', pull: ['UNAVAILABLE', 502, true], push: ['UNAVAILABLE', 502, true] },
  { status: 502, pull: ['UNAVAILABLE', 502, true], push: ['UNAVAILABLE', 502, true] },
  { status: 503, body: 'UNAVAILABLE', pull: ['UNAVAILABLE', 502, true], push: ['UNAVAILABLE', 502, true] },
];

/** A registry on loopback that accepts chunks and answers everything else with the row's status. */
async function fakeRegistry(): Promise<{ url: string; answer: (row: Row) => void; close: () => Promise<void> }> {
  let row: Row = TABLE[0]!;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'PATCH') {
        res.writeHead(202, { location: req.url, range: '0-9' }).end();
        return;
      }
      if (row.body) {
        const text = JSON.stringify({ errors: [{ code: row.body, message: `said ${row.status}`, detail: null }] });
        res.writeHead(row.status, { 'content-type': 'application/json' }).end(req.method === 'HEAD' ? undefined : text);
      } else res.writeHead(row.status, { 'content-type': 'text/html' }).end(req.method === 'HEAD' ? undefined : '<html>no</html>');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    answer: (r) => {
      row = r;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

function clientFor(url: string): RegistryClient {
  const { config } = loadConfig({ env: {}, flags: { upstream: url }, cwd: '.' });
  return new RegistryClient(config.upstreams[0]!, { connectMs: 2_000, firstByteMs: 5_000, idleMs: 5_000 }, pino({ level: 'silent' }), Date.now);
}

/** The error a promise rejects with, as [code, status, transient]. */
async function outcome(p: Promise<unknown>): Promise<[string, number, boolean]> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof OciError, String(err));
    return [err.code, err.status, isTransient(err)];
  }
  return assert.fail('expected a rejection');
}

async function pull(client: RegistryClient): Promise<never> {
  if (!(await getBlob(client, 'r', digest))) throw blobUnknown();
  return assert.fail('expected no blob');
}

const source = { size: 10, open: () => Readable.from([Buffer.alloc(10)]) };
const restart = () => Promise.reject(new Error('no restart expected'));

test('each upstream status maps to one error and one transience, for pulls, pushes and chunked completion', async () => {
  const registry = await fakeRegistry();
  const client = clientFor(registry.url);
  after(async () => {
    await client.close();
    await registry.close();
  });
  for (const row of TABLE) {
    registry.answer(row);
    assert.deepEqual(await outcome(pull(client)), row.pull, `pull answered ${row.status}`);
    assert.deepEqual(
      await outcome(putManifest(client, 'r', 'v1', 'application/vnd.oci.image.manifest.v1+json', Buffer.from('{}'))),
      row.push,
      `push ${row.status}`,
    );
    const chunked = uploadInChunks(client, 'r', digest, source, `${registry.url}/v2/r/blobs/uploads/1`, restart);
    assert.deepEqual(await outcome(chunked), row.push, `chunked completion answered ${row.status}`);
  }
});

test('network errors are transient in both directions', async () => {
  const closed = await fakeRegistry();
  await closed.close();
  const client = clientFor(closed.url);
  after(() => client.close());
  const [pullCode, , pullTransient] = await outcome(pull(client));
  assert.deepEqual([pullCode, pullTransient], ['UNAVAILABLE', true]);
  const [pushCode, , pushTransient] = await outcome(putManifest(client, 'r', 'v1', 'application/json', Buffer.from('{}')));
  assert.deepEqual([pushCode, pushTransient], ['UNAVAILABLE', true]);
  for (const code of ['ECONNRESET', 'ECONNREFUSED', 'UND_ERR_SOCKET']) assert.ok(isTransient(Object.assign(new Error(code), { code })), code);
  // The type, not the message, tells a cut link from an answer (an upload in chunks then asks where it stands).
  await assert.rejects(pull(client), (err) => err instanceof UnreachableError);
  const registry = await fakeRegistry();
  const answering = clientFor(registry.url);
  after(async () => {
    await answering.close();
    await registry.close();
  });
  registry.answer(TABLE[TABLE.length - 1]!);
  await assert.rejects(pull(answering), (err) => err instanceof OciError && err.code === 'UNAVAILABLE' && !(err instanceof UnreachableError));
});

test('an upstream cannot make a refusal transient by calling it UNAVAILABLE; an answer that is no error is a bad gateway', () => {
  const ctx = { upstream: 'u', what: 'blob x' };
  const refusal = upstreamStatusError({ status: 400, code: 'UNAVAILABLE', message: 'busy' }, ctx);
  assert.deepEqual([refusal.code, refusal.status, isTransient(refusal)], ['UNSUPPORTED', 400, false]);
  assert.match(refusal.message, /^upstream u answered 400 for blob x: UNAVAILABLE \(busy\)$/);
  const redirect = upstreamStatusError({ status: 307 }, ctx);
  assert.deepEqual([redirect.code, redirect.status, isTransient(redirect)], ['UNSUPPORTED', 502, false]);
  assert.equal(upstreamStatusError({ status: 405 }, ctx).code, 'UNSUPPORTED');
});
