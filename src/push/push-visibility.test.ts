/** @module push/push-visibility.test — a pushed manifest may name content of its own repository, or content its client may read elsewhere; sizes must match. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifest } from '../oci/manifest.js';
import { OCI_INDEX, OCI_MANIFEST } from '../oci/mediatypes.js';
import type { OciError } from '../oci/errors.js';
import { NO_READER, sortChildren, type Reader } from './push-visibility.js';
import type { Target } from '../upstream/target.js';
import { testStore, type Stored } from '../cache/cache-testkit.js';

const store = await testStore();
after(() => store.remove());
const deps = { blobs: store.blobs, repos: store.ports.repos };
const at = (repository: string): Target => ({ upstream: undefined, key: '', repository });

/** alice/secret: a private image; bob/x: bob's own layer uploaded there. */
const secretLayer = await store.put('layer of alice/secret');
const secretImage = await store.manifest('alice/secret', { owner: 'alice' }, [secretLayer]);
const bobLayer = await store.put('layer bob uploaded');
store.metadata.linkBlob('', 'bob/x', bobLayer.digest);
const bobConfig = await store.put('{"owner":"bob"}');
store.metadata.linkBlob('', 'bob/x', bobConfig.digest);

function image(config: Stored, layers: readonly Stored[], extra: Record<string, unknown> = {}) {
  const desc = (s: Stored) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: s.digest, size: s.size });
  return parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: desc(config), layers: layers.map(desc), ...extra })));
}

const onlyAlice: Reader = async (t) => t.repository === 'alice/secret';

test('a blob stored only under another repository is unseen unless the client may pull that repository', async () => {
  const parsed = image(bobConfig, [bobLayer, secretLayer]);
  const denied = await sortChildren(deps, at('bob/x'), parsed, NO_READER);
  assert.deepEqual(denied.unseenBlobs, [secretLayer.digest]);
  assert.deepEqual([...denied.visibleBlobs].sort(), [bobConfig.digest, bobLayer.digest].sort());

  const allowed = await sortChildren(deps, at('bob/x'), parsed, onlyAlice);
  assert.deepEqual(allowed.unseenBlobs, []);
  assert.ok(allowed.visibleBlobs.has(secretLayer.digest));
});

test('a blob on disk that no repository links is unseen whoever pushes', async () => {
  const orphan = await store.put('bytes no repository references');
  const everyone: Reader = async () => true;
  const sorted = await sortChildren(deps, at('bob/x'), image(bobConfig, [orphan]), everyone);
  assert.deepEqual(sorted.unseenBlobs, [orphan.digest]);
});

test('an index may list only manifests its own repository holds, whoever may read them elsewhere', async () => {
  const index = parseManifest(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, ...secretImage }] })),
  );
  assert.deepEqual((await sortChildren(deps, at('bob/x'), index, onlyAlice)).unseenManifests, [secretImage.digest]);
  assert.deepEqual((await sortChildren(deps, at('alice/secret'), index, NO_READER)).unseenManifests, []);
});

test('a subject held elsewhere is neither required nor made visible', async () => {
  const parsed = image(bobConfig, [bobLayer], { subject: { mediaType: OCI_MANIFEST, ...secretImage } });
  const sorted = await sortChildren(deps, at('bob/x'), parsed, NO_READER);
  assert.deepEqual(sorted.unseenBlobs, []);
  assert.deepEqual(sorted.unseenManifests, []);
  assert.equal(sorted.visibleBlobs.has(secretImage.digest), false);
});

test('a descriptor whose size disagrees with the stored content is MANIFEST_INVALID', async () => {
  const wrong = { ...bobLayer, size: bobLayer.size + 1 };
  await assert.rejects(sortChildren(deps, at('bob/x'), image(bobConfig, [wrong]), NO_READER), (e: OciError) => {
    assert.equal(e.code, 'MANIFEST_INVALID');
    assert.equal(e.status, 400);
    assert.match(e.message, new RegExp(`${bobLayer.digest} is ${bobLayer.size} bytes, not ${bobLayer.size + 1}`));
    return true;
  });
  const index = parseManifest(
    Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, ...secretImage, size: secretImage.size - 1 }] }),
    ),
  );
  await assert.rejects(sortChildren(deps, at('alice/secret'), index, NO_READER), (e: OciError) => e.code === 'MANIFEST_INVALID');
});
