/** @module e2e/hostile-params.test — malformed query parameters and path digests against a real berth: each a prompt 400 envelope naming what is wrong, never a hang or an uncaught error. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { makeManifest, pushManifest } from '../fixtures/oci-http.js';

let berth: Berth;
const REPO = 'params/app';
const DIGEST = `sha256:${'a'.repeat(64)}`;
/** A bound on each answer: the defect was a request that never got one. */
const ANSWER_MS = 10_000;

before(async () => {
  berth = await startBerth({ config: { version: 0.1 } });
  const m = makeManifest(Buffer.from('{}'), [Buffer.from('params layer')]);
  for (const tag of ['a', 'b', 'c']) assert.equal((await pushManifest(berth.url, REPO, m, tag)).status, 201);
});

after(async () => {
  // stop() also fails the run if berth logged an uncaught error at any point.
  await berth?.stop();
});

interface Envelope {
  errors: Array<{ code: string; message: string; detail: unknown }>;
}

/** One request sent as written (no re-encoding), answered within ANSWER_MS or failed. */
async function send(method: string, pathAndQuery: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const res = await request(`${berth.url}${pathAndQuery}`, { method: method as 'GET', signal: AbortSignal.timeout(ANSWER_MS) });
  return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
}

async function refused(method: string, pathAndQuery: string, code: string, names: RegExp): Promise<void> {
  const a = await send(method, pathAndQuery);
  const what = `${method} ${pathAndQuery}: ${a.status} ${a.body}`;
  assert.equal(a.status, 400, what);
  assert.match(String(a.headers['content-type']), /^application\/json/, what);
  const first = (JSON.parse(a.body) as Envelope).errors[0];
  assert.equal(first?.code, code, what);
  assert.match(first.message, names, what);
}

const N_CASES = ['x', '-1', '1.5', '1e309', '%00', '12345678901234567890', '+5', '%205', '0x10'];

test('a bad n on the catalog and on a tag list: 400 PAGINATION_NUMBER_INVALID naming n, at once', async () => {
  for (const n of N_CASES) {
    await refused('GET', `/v2/_catalog?n=${n}`, 'PAGINATION_NUMBER_INVALID', /query parameter n=/);
    await refused('GET', `/v2/${REPO}/tags/list?n=${n}`, 'PAGINATION_NUMBER_INVALID', /query parameter n=/);
  }
});

test('n=0 lists nothing; an n over the page size is clamped; last pages on', async () => {
  const none = await send('GET', `/v2/${REPO}/tags/list?n=0`);
  assert.equal(none.status, 200, none.body);
  assert.deepEqual((JSON.parse(none.body) as { tags: string[] }).tags, []);
  const all = await send('GET', `/v2/${REPO}/tags/list?n=99999999`);
  assert.deepEqual((JSON.parse(all.body) as { tags: string[] }).tags, ['a', 'b', 'c']);
  const rest = await send('GET', `/v2/${REPO}/tags/list?n=1&last=a`);
  assert.deepEqual((JSON.parse(rest.body) as { tags: string[] }).tags, ['b']);
  assert.match(String(rest.headers['link']), /n=1&last=b/);
  const catalog = await send('GET', '/v2/_catalog?n=5000&last=params');
  assert.deepEqual((JSON.parse(catalog.body) as { repositories: string[] }).repositories, [REPO]);
});

test('odd last values: 400 naming last', async () => {
  for (const last of ['%00', '%ff', '..%2F..', 'a%20b', 'x'.repeat(200)]) {
    await refused('GET', `/v2/${REPO}/tags/list?n=1&last=${last}`, 'UNSUPPORTED', /query parameter last=/);
  }
  for (const last of ['%00', 'UPPER', 'a%2F%2Fb', `${'a'.repeat(300)}`]) {
    await refused('GET', `/v2/_catalog?last=${last}`, 'NAME_INVALID', /query parameter last=/);
  }
});

test('a bad artifactType on referrers: 400 naming artifactType', async () => {
  for (const t of ['%00', 'nomediatype', 'a/b/c', 'application/json%3B%20x%3D1']) {
    await refused('GET', `/v2/${REPO}/referrers/${DIGEST}?artifactType=${t}`, 'UNSUPPORTED', /query parameter artifactType=/);
  }
});

test('bad digests in paths, ?mount=, ?digest=; a bad ns: 400 naming each', async () => {
  for (const d of ['sha256:zz', 'md5:abc', `sha256:${'A'.repeat(64)}`, '%00']) {
    await refused('GET', `/v2/${REPO}/blobs/${d}`, 'DIGEST_INVALID', /digest/);
    await refused('GET', `/v2/${REPO}/referrers/${d}`, 'DIGEST_INVALID', /digest/);
    await refused('POST', `/v2/${REPO}/blobs/uploads/?mount=${d}&from=params/other`, 'DIGEST_INVALID', /query parameter mount=/);
    await refused('POST', `/v2/${REPO}/blobs/uploads/?digest=${d}`, 'DIGEST_INVALID', /query parameter digest=/);
  }
  const session = await send('POST', `/v2/${REPO}/blobs/uploads/`);
  assert.equal(session.status, 202, session.body);
  await refused('PUT', `${String(session.headers['location'])}?digest=sha256:zz`, 'DIGEST_INVALID', /query parameter digest=/);
  for (const ns of ['%00', 'a%20b', '-bad', 'a..b']) {
    await refused('GET', `/v2/${REPO}/tags/list?ns=${ns}`, 'NAME_INVALID', /query parameter ns=/);
    await refused('GET', `/v2/?ns=${ns}`, 'NAME_INVALID', /query parameter ns=/);
  }
});

test('none of it logged an error, and berth still answers', async () => {
  assert.equal((await send('GET', '/v2/')).status, 200);
  const faults = (await berth.logLines()).filter((l) => Number(l['level']) >= 50);
  assert.deepEqual(faults, []);
});
