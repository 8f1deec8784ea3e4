/** @module oci/oci.test — grammar, digest and manifest parsing against the distribution spec. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf, isDigest, parseDigest } from './digest.js';
import { isRepositoryName, isTag, parseManifestReference } from './reference.js';
import { assertSchemaVersion2, parseManifest } from './manifest.js';
import { OciError, ERROR_CODES } from './errors.js';
import { OCI_INDEX, OCI_MANIFEST, parseAccept } from './mediatypes.js';

test('digests: sha256 and sha512 accepted, anything malformed refused with DIGEST_INVALID', () => {
  const d = digestOf(Buffer.from('hello'));
  assert.equal(parseDigest(d).algorithm, 'sha256');
  assert.ok(isDigest(digestOf(Buffer.from('x'), 'sha512')));
  for (const bad of ['sha256:totallywrong', 'sha256:' + 'A'.repeat(64), 'md5:abc', 'sha256', '../etc/passwd', 'sha256:' + 'a'.repeat(63)]) {
    assert.throws(
      () => parseDigest(bad),
      (e: unknown) => e instanceof OciError && e.code === 'DIGEST_INVALID',
      bad,
    );
  }
});

test('repository names and tags follow the spec grammar', () => {
  for (const ok of ['a', 'library/nginx', 'xing/app', 'a.b_c__d-e/f--g', 'x/'.repeat(10) + 'y']) assert.ok(isRepositoryName(ok), ok);
  for (const bad of ['', 'A', '../x', 'a//b', '/a', 'a/', 'a_', '-a', 'a'.repeat(256), 'a/..', 'a/.b']) assert.ok(!isRepositoryName(bad), bad);
  assert.ok(isTag('v1.0_rc-1'));
  assert.ok(!isTag('.INVALID_MANIFEST_NAME'));
  assert.ok(!isTag('-x'));
  assert.ok(!isTag('a'.repeat(129)));
  assert.equal(parseManifestReference('.INVALID_MANIFEST_NAME'), undefined);
  assert.deepEqual(parseManifestReference('latest'), { kind: 'tag', tag: 'latest' });
  assert.equal(parseManifestReference(digestOf(Buffer.from('m')))?.kind, 'digest');
});

test('manifests: image, index and subject are parsed into descriptors', () => {
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(Buffer.from('l')), size: 1 };
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(Buffer.from('c')), size: 1 };
  const image = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config, layers: [layer], subject: layer })));
  assert.equal(image.mediaType, OCI_MANIFEST);
  assert.deepEqual(
    image.blobs.map((b) => b.digest),
    [config.digest, layer.digest],
  );
  assert.equal(image.subject?.digest, layer.digest);
  const index = parseManifest(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...config, platform: { os: 'linux', architecture: 'arm64' } }] })),
  );
  assert.equal(index.manifests[0]?.platform?.architecture, 'arm64');
  assert.throws(
    () => parseManifest(Buffer.from('{')),
    (e: unknown) => e instanceof OciError && e.code === 'MANIFEST_INVALID',
  );
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ config: { digest: 'nope', size: 1 } }))), /config.digest/);
});

test('schemaVersion of a pushed manifest: the integer 2 as written, nothing JSON.parse merely turns into 2', () => {
  const doc = (v: string, rest = '') => Buffer.from(`{"mediaType":"${OCI_MANIFEST}",${rest}"schemaVersion"${v},"layers":[]}`);
  for (const ok of [':2', ' : 2', ':1,"schemaVersion":2', ':2 ']) assert.doesNotThrow(() => assertSchemaVersion2(doc(ok)), ok);
  assert.doesNotThrow(() => assertSchemaVersion2(Buffer.from('{"schema\\u0056ersion":2}')), 'escaped key');
  for (const bad of [':"2"', ':2.0', ':2e0', ':1e999', ':-2', ':1', ':null', ':[2]', ':2,"schemaVersion":"2"']) {
    assert.throws(
      () => assertSchemaVersion2(doc(bad)),
      (e: unknown) => e instanceof OciError && e.code === 'MANIFEST_INVALID' && e.status === 400,
      bad,
    );
  }
  assert.throws(() => assertSchemaVersion2(Buffer.from('{"layers":[{"schemaVersion":2}]}')), /missing/, 'nested members do not count');
});

test('every error code has a status and a description', () => {
  for (const [code, { status, description }] of Object.entries(ERROR_CODES)) {
    assert.ok(status >= 400 && status < 600, code);
    assert.ok(description.length > 0, code);
    assert.deepEqual(new OciError(code as keyof typeof ERROR_CODES).toEnvelope().errors[0]?.code, code);
  }
});

test('Accept headers are split into bare media types', () => {
  assert.deepEqual(parseAccept(['application/a+json; q=0.5, application/b', 'c/d']), ['application/a+json', 'application/b', 'c/d']);
});
