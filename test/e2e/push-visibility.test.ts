/** @module e2e/push-visibility.test — in every push mode a manifest may name only content its repository holds or its pusher may read: bob cannot read alice's private layers through bob/x. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { startBerth, type Berth } from '../fixtures/berth.js';
import { makeTempDir, removeDir } from '../fixtures/proc.js';
import { basic } from '../fixtures/oci-call.js';
import { OCI_MANIFEST, assertError, call, digestOf, makeManifest, uploadBlob, type TestManifest } from '../fixtures/oci-http.js';
import { waitForDrain } from '../fixtures/push.js';

const alice = basic('alice', 'alice-edge-pw');
const bob = basic('bob', 'bob-edge-pw');
/** Each may do anything in their own namespace; bob may also pull shared/*, which alice publishes. */
const RULES = [
  { users: ['alice'], repositories: ['alice/*', 'shared/*'], actions: ['*'] },
  { users: ['bob'], repositories: ['bob/*'], actions: ['*'] },
  { users: ['bob'], repositories: ['shared/*'], actions: ['pull'] },
];
type Mode = 'plain' | 'local' | 'write-through' | 'write-behind';
/** Path prefix routing to the mode's upstream entry ('' : the plain registry, a berth of its own). */
const PREFIX: Record<Mode, string> = { plain: '', local: 'local/', 'write-through': 'through/', 'write-behind': 'behind/' };

let work: string;
let central: Registry;
let plain: Berth;
let cache: Berth;

before(async () => {
  work = await makeTempDir('berth-e2e-push-visibility-');
  central = await startRegistry();
  const htpasswd = path.join(work, 'htpasswd');
  await writeFile(htpasswd, `alice:${bcrypt.hashSync('alice-edge-pw', 4)}\nbob:${bcrypt.hashSync('bob-edge-pw', 4)}\n`);
  const auth = { htpasswd: { path: htpasswd }, rules: RULES };
  plain = await startBerth({ config: { version: 0.1, auth } });
  const modes = ['local', 'write-through', 'write-behind'] as const;
  cache = await startBerth({
    config: {
      version: 0.1,
      auth,
      upstreams: modes.map((mode, i) => ({ name: mode, remoteurl: central.url, prefix: PREFIX[mode].slice(0, -1), default: i === 0, pushmode: mode })),
    },
  });
});

after(async () => {
  await plain?.stop();
  await cache?.stop();
  await central?.stop();
  await removeDir(work);
});

const put = (base: string, repo: string, ref: string, body: Buffer, who: Record<string, string>) =>
  call(base, 'PUT', `/v2/${repo}/manifests/${ref}`, { body, headers: { ...who, 'content-type': OCI_MANIFEST } });

/** Uploads the manifest's blobs to `repo` as `who`, then PUTs it there by tag. */
async function pushImage(base: string, repo: string, m: TestManifest, who: Record<string, string>): Promise<void> {
  for (const b of [m.config, ...m.layers]) await uploadBlob(base, repo, b.data, 'sha256', who);
  const r = await put(base, repo, 'v1', m.bytes, who);
  assert.equal(r.status, 201, r.body.toString());
}

/** Neither the manifest (by digest or tag) nor any of the named blobs can be read under `repo`. */
async function assertNothingUnder(base: string, repo: string, manifest: string, blobs: readonly string[]): Promise<void> {
  for (const ref of [manifest, 'v1']) assert.equal((await call(base, 'GET', `/v2/${repo}/manifests/${ref}`, { headers: bob })).status, 404, ref);
  for (const d of blobs) {
    const r = await call(base, 'GET', `/v2/${repo}/blobs/${d}`, { headers: bob });
    assert.equal(r.status, 404, `${d} readable under ${repo}: ${r.status}`);
  }
}

for (const mode of Object.keys(PREFIX) as Mode[]) {
  test(`${mode}: bob cannot name, mount or reference alice's private content in bob/x; what he may read still goes`, async () => {
    const base = mode === 'plain' ? plain.url : cache.url;
    const p = PREFIX[mode];
    // Names of their own per mode: the cache's three modes share the central registry's repositories.
    const [x, priv, pub] = [`${p}bob/x-${mode}`, `${p}alice/secret-${mode}`, `${p}shared/base-${mode}`];
    const bytes = (what: string) => Buffer.concat([Buffer.from(`${mode} ${what} `), randomBytes(64)]);
    const secret = makeManifest(bytes('alice config'), [bytes('alice private layer')]);
    const secretLayer = secret.layers[0]!.digest;
    await pushImage(base, priv, secret, alice);
    const shared = makeManifest(bytes('shared config'), [bytes('shared layer one'), bytes('shared layer two')]);
    await pushImage(base, pub, shared, alice);
    assert.equal((await call(base, 'GET', `/v2/${x}/blobs/${secretLayer}`, { headers: bob })).status, 404);

    // A manifest naming the private layer by digest: refused, and nothing of it is kept.
    const bobConfig = bytes('bob config');
    await uploadBlob(base, x, bobConfig, 'sha256', bob);
    const attack = makeManifest(bobConfig, [secret.layers[0]!.data]);
    assertError(await put(base, x, 'v1', attack.bytes, bob), 400, 'MANIFEST_BLOB_UNKNOWN');
    assertError(await put(base, x, attack.digest, attack.bytes, bob), 400, 'MANIFEST_BLOB_UNKNOWN');
    await assertNothingUnder(base, x, attack.digest, [secretLayer, secret.config.digest]);

    // A mount from a repository bob may not pull does not link the blob.
    const mount = await call(base, 'POST', `/v2/${x}/blobs/uploads/?mount=${secretLayer}&from=${priv}`, { headers: bob });
    assert.notEqual(mount.status, 201, mount.body.toString());
    await assertNothingUnder(base, x, attack.digest, [secretLayer]);
    assertError(await put(base, x, 'v1', attack.bytes, bob), 400, 'MANIFEST_BLOB_UNKNOWN');

    // A subject held elsewhere is accepted (the spec wants subjects pushable first) and reveals nothing.
    const bobLayer = bytes('bob layer');
    const referrer = makeManifest(bobConfig, [bobLayer], { subject: { mediaType: OCI_MANIFEST, digest: secret.digest, size: secret.bytes.length } });
    await uploadBlob(base, x, bobLayer, 'sha256', bob);
    const referred = await put(base, x, referrer.digest, referrer.bytes, bob);
    assert.equal(referred.status, 201, referred.body.toString());
    assert.equal(referred.header('oci-subject'), secret.digest);
    await assertNothingUnder(base, x, secret.digest, [secretLayer, secret.config.digest]);

    // Descriptors must match the content: size off by one, or schemaVersion not the integer 2.
    const oversized = Buffer.from(referrer.bytes.toString().replace(`"size":${bobLayer.length}`, `"size":${bobLayer.length + 1}`));
    assertError(await put(base, x, 'v1', oversized, bob), 400, 'MANIFEST_INVALID');
    for (const version of ['"2"', '2.0', '1e999']) {
      const odd = Buffer.from(referrer.bytes.toString().replace('"schemaVersion":2', `"schemaVersion":${version}`));
      assertError(await put(base, x, 'v1', odd, bob), 400, 'MANIFEST_INVALID');
    }
    assert.equal((await call(base, 'GET', `/v2/${x}/manifests/v1`, { headers: bob })).status, 404);

    // Legitimate: one shared layer mounted with pull rights on shared/base, the other named where it is.
    const [one, two] = shared.layers as [TestManifest['layers'][0], TestManifest['layers'][0]];
    const mounted = await call(base, 'POST', `/v2/${x}/blobs/uploads/?mount=${one.digest}&from=${pub}`, { headers: bob });
    assert.equal(mounted.status, 201, mounted.body.toString());
    const legit = makeManifest(bobConfig, [one.data, two.data, bobLayer]);
    const pushed = await put(base, x, 'v1', legit.bytes, bob);
    assert.equal(pushed.status, 201, pushed.body.toString());
    for (const l of legit.layers) {
      const r = await call(base, 'GET', `/v2/${x}/blobs/${l.digest}`, { headers: bob });
      assert.equal(r.status, 200);
      assert.equal(digestOf(r.body), l.digest);
    }

    if (mode === 'write-through' || mode === 'write-behind') {
      if (mode === 'write-behind') await waitForDrain(cache);
      // The central registry got the legitimate image and nothing of the refused one.
      assert.equal((await call(central.url, 'GET', `/v2/bob/x-${mode}/manifests/${legit.digest}`, { headers: { accept: OCI_MANIFEST } })).status, 200);
      assert.equal((await call(central.url, 'GET', `/v2/bob/x-${mode}/manifests/${attack.digest}`, { headers: { accept: OCI_MANIFEST } })).status, 404);
      assert.equal((await call(central.url, 'HEAD', `/v2/bob/x-${mode}/blobs/${secretLayer}`)).status, 404);
    }
  });
}
