/** @module e2e/disk-full.test — berth on a small tmpfs meets ENOSPC at each write site (blob fill, uploads, metadata.db, push.db, the lock file at start): 507 envelopes, nothing left behind, and it keeps serving and starting. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { makeTempDir, removeDir, run, sleep, waitFor } from '../fixtures/proc.js';
import { call, digestOf, makeManifest, pushManifest, uploadBlob, OCI_MANIFEST, type Answer } from '../fixtures/oci-http.js';
import { pushModesConfig } from '../fixtures/push.js';

const MiB = 1024 * 1024;
let mountpoint: string;
let mounted = false;
let registry: Registry;
let configDir: string;

before(async () => {
  mountpoint = await makeTempDir('berth-tmpfs-');
  await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountpoint]);
  mounted = true;
  configDir = await makeTempDir('berth-diskfull-');
  registry = await startRegistry();
});

after(async () => {
  await registry?.stop();
  if (mounted) await run('umount', [mountpoint]).catch(() => undefined);
  await removeDir(mountpoint);
  await removeDir(configDir);
});

const store = () => path.join(mountpoint, 'store');
const filler = () => path.join(mountpoint, 'filler');

/** Another program fills the file system to the last byte. */
async function fillDisk(): Promise<void> {
  const fh = await open(filler(), 'a');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) await fh.write(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close();
  }
}

function startOnStore(): Promise<Berth> {
  const config = pushModesConfig(configDir, registry.url, undefined, { storage: { filesystem: { rootdirectory: store() } } });
  return startBerth({ config, root: store() });
}

function assert507(a: Answer, what: string): void {
  assert.equal(a.status, 507, `${what}: ${a.status} ${a.body.toString()}`);
  const errors = a.json<{ errors: Array<{ code: string; message: string }> }>().errors;
  assert.equal(errors[0]?.code, 'UNAVAILABLE', what);
  assert.match(errors[0]?.message ?? '', /disk full/, what);
}

const files = async (dir: string) => (await readdir(path.join(store(), dir))).sort();

test('a full disk: 507 at every write site, nothing of a failed request kept, readiness says so, and berth starts on it and serves what it holds', async () => {
  await mkdir(store());
  // Upstream: an image whose layer is larger than the whole store, and a small one.
  const big = makeManifest(randomBytes(200), [randomBytes(10 * MiB)]);
  const small = makeManifest(randomBytes(150), [randomBytes(64 * 1024)]);
  assert.equal((await pushManifest(registry.url, 'big/app', big, 'v1')).status, 201);
  assert.equal((await pushManifest(registry.url, 'small/app', small, 'v1')).status, 201);

  let berth = await startOnStore();
  try {
    // Written in the background once berth has sized it: starting does not wait for it.
    const reserveSize = async () => (await stat(path.join(store(), 'reserve')).catch(() => undefined))?.size;
    await waitFor(async () => (await reserveSize()) === MiB, 10_000, { what: 'the reserve: an eighth of the 8 MiB file system' });

    // Blob fill: the layer passes through to the client, verified; nothing of it stays.
    assert.equal((await call(berth.url, 'GET', '/v2/big/app/manifests/v1', { headers: { accept: OCI_MANIFEST } })).status, 200);
    const layer = await call(berth.url, 'GET', `/v2/big/app/blobs/${big.layers[0]!.digest}`);
    assert.equal(layer.status, 200);
    assert.equal(digestOf(layer.body), big.layers[0]!.digest);
    await waitFor(async () => (await files('tmp')).length === 0, 10_000, { what: 'the partial fill is removed' });

    // Uploads: PATCH, monolithic POST and PUT of 10 MiB each answer 507, and leave nothing.
    const session = await call(berth.url, 'POST', '/v2/behind/up/blobs/uploads/');
    assert.equal(session.status, 202);
    const location = new URL(session.header('location')!, berth.url);
    const tenMiB = randomBytes(10 * MiB);
    assert507(await call(berth.url, 'PATCH', location.toString(), { body: tenMiB }), 'PATCH');
    assert.deepEqual(await files('uploads'), [location.pathname.split('/').pop()]);
    assert.equal((await stat(path.join(store(), 'uploads', location.pathname.split('/').pop()!))).size, 0, 'the failed chunk left nothing');
    assert507(await call(berth.url, 'POST', `/v2/behind/up/blobs/uploads/?digest=${digestOf(tenMiB)}`, { body: tenMiB }), 'monolithic POST');
    const put = new URL(location);
    put.searchParams.set('digest', digestOf(tenMiB));
    assert507(await call(berth.url, 'PUT', put.toString(), { body: tenMiB }), 'PUT');
    assert.equal((await call(berth.url, 'DELETE', location.toString())).status, 204);
    assert.deepEqual(await files('uploads'), []);
    assert.deepEqual(await files('tmp'), []);

    // A small push (write-behind: metadata.db and push.db) and a small pull work after it.
    assert.equal((await pushManifest(berth.url, 'behind/small', small, 'v1')).status, 201);
    assert.equal((await call(berth.url, 'GET', '/v2/small/app/manifests/v1', { headers: { accept: OCI_MANIFEST } })).status, 200);
    assert.equal((await call(berth.url, 'GET', `/v2/small/app/blobs/${small.layers[0]!.digest}`)).status, 200);

    // The space those took came back: so did the reserve (released meanwhile by eviction's metadata writes).
    const reserveBack = async () => (await stat(path.join(store(), 'reserve')).catch(() => undefined))?.size === MiB;
    await waitFor(reserveBack, 20_000, { what: 'the reserve is written again' });

    // Something else fills the disk: metadata writes (a tag, a mount; metadata.db and the
    // write-behind queue in push.db) still go, on the reserve.
    await fillDisk();
    const tag = await call(berth.url, 'PUT', '/v2/behind/small/manifests/v2', { body: small.bytes, headers: { 'content-type': OCI_MANIFEST } });
    assert.equal(tag.status, 201, tag.body.toString());
    const mount = await call(berth.url, 'POST', `/v2/behind/other/blobs/uploads/?mount=${small.layers[0]!.digest}&from=behind/small`);
    assert.equal(mount.status, 201, mount.body.toString());
    assert.equal(await stat(path.join(store(), 'reserve')).catch(() => undefined), undefined, 'the reserve was released for them');
    // New bytes cannot be stored: 507, never 500, and no file for the session that failed.
    for (let i = 0; i < 5; i++) {
      const s = await call(berth.url, 'POST', '/v2/behind/full/blobs/uploads/');
      if (s.status === 202) {
        const p = await call(berth.url, 'PATCH', new URL(s.header('location')!, berth.url).toString(), { body: randomBytes(2 * MiB) });
        assert507(p, 'PATCH on a full disk');
        assert.equal((await call(berth.url, 'DELETE', new URL(s.header('location')!, berth.url).toString())).status, 204);
      } else assert507(s, 'POST on a full disk');
    }
    assert.deepEqual(await files('uploads'), []);
    const ready = await call(berth.url, 'GET', '/readyz');
    assert.equal(ready.status, 503, ready.body.toString());
    const disk = ready.json<{ store: { disk: { ok: boolean; reserveHeld: boolean; message: string; fix: string } } }>().store.disk;
    assert.equal(disk.ok, false);
    assert.match(disk.message, /free/);
    assert.match(disk.fix, /free space/);

    // Space comes back: ready again, the reserve written again.
    await rm(filler());
    await waitFor(async () => (await call(berth.url, 'GET', '/readyz')).status === 200, 20_000, { what: 'ready once space is back' });
    assert.ok(await reserveBack());

    // A partial upload and a stale fill file, then a restart on a disk full to the last byte.
    const partial = await call(berth.url, 'POST', '/v2/behind/partial/blobs/uploads/');
    assert.equal((await call(berth.url, 'PATCH', new URL(partial.header('location')!, berth.url).toString(), { body: randomBytes(100_000) })).status, 202);
    await berth.stop();
    await writeFile(path.join(store(), 'tmp', 'stale-fill'), randomBytes(100_000));
    await rm(path.join(store(), 'berth.lock'), { force: true });
    await fillDisk();
    berth = await startOnStore();
    assert.deepEqual(await files('tmp'), [], 'tmp/ emptied');
    assert.deepEqual(await files('uploads'), [], 'partial uploads removed on a full disk');
    assert.ok(
      (await files('')).some((f) => /^berth\.lock(\.w\d+)?$/.test(f)),
      'the lock file was written',
    );
    // It serves what it holds, pushed and pulled.
    assert.equal((await call(berth.url, 'GET', '/v2/behind/small/manifests/v2', { headers: { accept: OCI_MANIFEST } })).status, 200);
    const held = await call(berth.url, 'GET', `/v2/small/app/blobs/${small.layers[0]!.digest}`);
    assert.equal(held.status, 200);
    assert.equal(digestOf(held.body), small.layers[0]!.digest);
    await rm(filler());
    // After the restart a small push works again.
    const again = makeManifest(randomBytes(120), [randomBytes(30_000)]);
    await sleep(100);
    assert.equal((await pushManifest(berth.url, 'behind/again', again, 'v1')).status, 201);
    await uploadBlob(berth.url, 'behind/again', randomBytes(1000));
  } finally {
    await berth.stop();
  }
});
