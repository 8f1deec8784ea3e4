/**
 * @module e2e/zstd-chunked.test — a zstd:chunked partial pull by the real client (skopeo 1.18 from Debian trixie, its
 * containers/storage with partial images on) through a cold berth: the layer's table of contents and its file chunks
 * come as ranges (206, several of them in one multipart/byteranges answer), every file lands byte-identical, and the
 * whole layer is still filled once and verified behind them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { isolatedSkopeoEnv } from '../fixtures/image.js';
import { LOOPBACK, makeTempDir, removeDir, run, waitFor } from '../fixtures/proc.js';

/** .ci/fetch-skopeo puts it here (dist/test/e2e is three levels below the repository). */
const SKOPEO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../.tools/bin/skopeo-trixie');
const REPO = 'xing/chunked';
const FILES = 120;

interface Seen {
  method: string;
  url: string;
  range: string | undefined;
  status: number;
  contentType: string | undefined;
  bytes: number;
}

let work: string;
let registry: Registry;
let berth: Berth;
let front: http.Server;
let frontUrl: string;
const seen: Seen[] = [];
const files = new Map<string, Buffer>();
let layerDigest: string;
let layerSize: number;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** An OCI layout of one uncompressed layer holding many files of mixed sizes (a few larger than a chunk). */
async function writeLayout(dir: string): Promise<void> {
  const rootfs = path.join(dir, 'rootfs');
  await mkdir(path.join(rootfs, 'app'), { recursive: true });
  for (let i = 0; i < FILES; i++) {
    const size = i % 30 === 0 ? 1_500_000 + i * 1000 : 1000 + ((i * 7919) % 60_000);
    const data = randomBytes(size);
    files.set(`app/f${i}`, data);
    await writeFile(path.join(rootfs, 'app', `f${i}`), data);
  }
  const layout = path.join(dir, 'layout');
  const blobs = path.join(layout, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const tarFile = path.join(dir, 'layer.tar');
  await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-C', rootfs, '-cf', tarFile, 'app']);
  const tarBytes = await readFile(tarFile);
  const put = async (b: Buffer) => {
    const d = sha256(b);
    await writeFile(path.join(blobs, d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const layer = await put(tarBytes);
  const config = await put(
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] }, config: {} })),
  );
  const manifest = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
      }),
    ),
  );
  await writeFile(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }],
    }),
  );
  await writeFile(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
}

/** A pass-through in front of berth that notes what the client asked and what it got back. */
async function startFront(target: URL): Promise<void> {
  front = http.createServer((req, res) => {
    const note: Seen = { method: req.method ?? '', url: req.url ?? '', range: req.headers.range, status: 0, contentType: undefined, bytes: 0 };
    seen.push(note);
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      note.status = ur.statusCode ?? 0;
      note.contentType = ur.headers['content-type'];
      ur.on('data', (c: Buffer) => (note.bytes += c.length));
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (err) => res.destroy(err));
    req.pipe(up);
  });
  await new Promise<void>((r) => front.listen(0, LOOPBACK, r));
  frontUrl = `${LOOPBACK}:${(front.address() as AddressInfo).port}`;
}

before(async () => {
  await access(SKOPEO).catch(() => {
    throw new Error(`${SKOPEO} is missing: run .ci/fetch-skopeo as root (npm test's preflight does)`);
  });
  work = await makeTempDir('berth-e2e-zstd-chunked-');
  await writeLayout(work);
  registry = await startRegistry();
  const env = await isolatedSkopeoEnv(work);
  // skopeo converts the layer to zstd:chunked on the way to the central registry.
  await run(
    SKOPEO,
    [
      'copy',
      '--insecure-policy',
      '--dest-tls-verify=false',
      '--dest-compress-format',
      'zstd:chunked',
      `oci:${path.join(work, 'layout')}:v1`,
      `docker://${registry.host}/${REPO}:v1`,
    ],
    { env, timeoutMs: 300_000 },
  );
  const m = JSON.parse(
    (await run('curl', ['-sf', '-H', 'Accept: application/vnd.oci.image.manifest.v1+json', `${registry.url}/v2/${REPO}/manifests/v1`])).stdout,
  ) as { layers: Array<{ mediaType: string; digest: string; size: number; annotations?: Record<string, string> }> };
  const layer = m.layers[0]!;
  assert.equal(layer.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  assert.ok(layer.annotations?.['io.github.containers.zstd-chunked.manifest-position'], 'the layer carries a zstd:chunked table of contents');
  layerDigest = layer.digest;
  layerSize = layer.size;
  berth = await startBerth({ proxy: { remoteurl: registry.url } });
  await startFront(new URL(berth.url));
});

after(async () => {
  await new Promise<void>((r) => (front ? front.close(() => r()) : r()));
  await berth?.stop();
  await registry?.stop();
  if (work) {
    await unmountUnder(path.join(work, 'storage'));
    await removeDir(work);
  }
});

/** The overlay driver mounts its own directory (and layers it mounted): undone deepest first so the folder can go. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run('umount', [m]).catch(() => run('umount', ['-l', m]).catch(() => undefined));
}

/** Finds a file by its path inside any overlay layer directory of the client's storage. */
async function findInStorage(graph: string, rel: string): Promise<Buffer | undefined> {
  const overlay = path.join(graph, 'overlay');
  for (const id of await readdir(overlay)) {
    const file = path.join(overlay, id, 'diff', rel);
    const got = await readFile(file).catch(() => undefined);
    if (got) return got;
  }
  return undefined;
}

test('a zstd:chunked partial pull through a cold berth gets its chunks as ranges, several in one multipart answer, and every file intact', async () => {
  const storage = path.join(work, 'storage');
  const conf = path.join(work, 'storage.conf');
  await writeFile(
    conf,
    [
      '[storage]',
      'driver = "overlay"',
      `graphroot = "${path.join(storage, 'graph')}"`,
      `runroot = "${path.join(storage, 'run')}"`,
      '[storage.options]',
      'pull_options = {enable_partial_images = "true", use_hard_links = "false", ostree_repos = ""}',
      '',
    ].join('\n'),
  );
  const env = { ...(await isolatedSkopeoEnv(work)), CONTAINERS_STORAGE_CONF: conf, TMPDIR: work };
  const pulled = await run(
    SKOPEO,
    ['--debug', 'copy', '--insecure-policy', '--src-tls-verify=false', `docker://${frontUrl}/${REPO}:v1`, `containers-storage:${REPO}:v1`],
    { env, timeoutMs: 300_000 },
  );
  assert.match(pulled.stderr + pulled.stdout, /Retrieved partial blob/, 'the client took the partial (chunked) path');

  const layerGets = seen.filter((s) => s.method === 'GET' && s.url.endsWith(`/blobs/${layerDigest}`));
  assert.ok(layerGets.length >= 2, `the table of contents, then the chunks: ${JSON.stringify(layerGets)}`);
  for (const g of layerGets) {
    assert.ok(g.range?.startsWith('bytes='), `every read of the layer is a range: ${JSON.stringify(g)}`);
    assert.equal(g.status, 206, JSON.stringify(g));
  }
  const multi = layerGets.filter((g) => g.range!.includes(','));
  assert.ok(multi.length >= 1, 'at least one request asked for several ranges at once');
  for (const g of multi) assert.match(g.contentType ?? '', /^multipart\/byteranges; boundary=/, JSON.stringify(g));

  // The client holds every file as it was written, though it never read the layer front to back.
  const graph = path.join(storage, 'graph');
  for (const [rel, data] of files) {
    const got = await findInStorage(graph, rel);
    assert.ok(got, `${rel} is in the client's storage`);
    assert.equal(sha256(got), sha256(data), rel);
  }

  // Behind the ranges, berth filled the whole layer once and verified it: it serves it whole with the central registry gone.
  await waitFor(async () => {
    const head = await fetch(`${berth.url}/v2/${REPO}/blobs/${layerDigest}`, { method: 'HEAD' });
    return head.status === 200 && Number(head.headers.get('content-length')) === layerSize;
  }, 120_000);
  const fetched = (await registry.requests()).filter((r) => r.method === 'GET' && r.uri.endsWith(`/blobs/${layerDigest}`));
  assert.ok(fetched.length >= 1);
  await registry.down();
  const whole = await fetch(`${berth.url}/v2/${REPO}/blobs/${layerDigest}`);
  assert.equal(whole.status, 200);
  assert.equal(`sha256:${sha256(Buffer.from(await whole.arrayBuffer()))}`, layerDigest);
});
