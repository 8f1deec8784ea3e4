/** @module cache/cosign.test — cosign signatures checked with generated keys: valid, another key, another digest or image, other key types. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { checkSignature, isSignatureArtifact, sameRepository, signatureLayers, signatureTag, SIMPLE_SIGNING } from './cosign.js';
import { parseManifest } from '../oci/manifest.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const OTHER = `sha256:${'b'.repeat(64)}`;

function payload(digest: string, reference: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': reference }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
      optional: null,
    }),
  );
}

function keyPair(type: 'ec' | 'rsa' | 'ed25519', namedCurve = 'prime256v1') {
  if (type === 'ec') return generateKeyPairSync('ec', { namedCurve });
  if (type === 'rsa') return generateKeyPairSync('rsa', { modulusLength: 2048 });
  return generateKeyPairSync('ed25519');
}

function signed(privateKey: KeyObject, body: Buffer): string {
  return sign(privateKey.asymmetricKeyType === 'ed25519' ? null : 'sha256', body, privateKey).toString('base64');
}

test('an ECDSA P-256 signature over the payload, for this digest and repository, is valid', () => {
  const { privateKey, publicKey } = keyPair('ec');
  const body = payload(DIGEST, '127.0.0.1:5000/xing/app');
  const v = checkSignature({
    payload: body,
    signature: signed(privateKey, body),
    digest: DIGEST,
    repository: 'xing/app',
    keys: [{ file: 'cosign.pub', key: publicKey }],
  });
  assert.deepEqual(v, { ok: true, file: 'cosign.pub' });
});

test('P-384, RSA and Ed25519 keys verify too; any of several configured keys may have signed', () => {
  for (const [type, curve] of [
    ['ec', 'secp384r1'],
    ['rsa', ''],
    ['ed25519', ''],
  ] as const) {
    const { privateKey, publicKey } = keyPair(type, curve);
    const other = keyPair('ec').publicKey;
    const body = payload(DIGEST, 'xing/app');
    const keys = [
      { file: 'other.pub', key: other },
      { file: `${type}.pub`, key: publicKey },
    ];
    const v = checkSignature({ payload: body, signature: signed(privateKey, body), digest: DIGEST, repository: 'xing/app', keys });
    assert.deepEqual(v, { ok: true, file: `${type}.pub` }, type);
  }
});

test('a signature by another key, over other bytes, or empty is refused, naming the configured keys', () => {
  const mine = keyPair('ec');
  const theirs = keyPair('ec');
  const body = payload(DIGEST, 'xing/app');
  const keys = [{ file: '/etc/berth/cosign.pub', key: mine.publicKey }];
  const byOther = checkSignature({ payload: body, signature: signed(theirs.privateKey, body), digest: DIGEST, repository: 'xing/app', keys });
  assert.equal(byOther.ok, false);
  assert.match(!byOther.ok ? byOther.reason : '', /does not verify with any configured key \(\/etc\/berth\/cosign\.pub\)/);
  const tampered = Buffer.from(body.toString().replace('xing/app', 'xing/evil'));
  assert.equal(checkSignature({ payload: tampered, signature: signed(mine.privateKey, body), digest: DIGEST, repository: 'xing/app', keys }).ok, false);
  assert.equal(checkSignature({ payload: body, signature: '', digest: DIGEST, repository: 'xing/app', keys }).ok, false);
});

test('a valid signature for another digest or another repository is refused, saying which', () => {
  const { privateKey, publicKey } = keyPair('ec');
  const keys = [{ file: 'cosign.pub', key: publicKey }];
  const forOther = payload(OTHER, 'xing/app');
  const v1 = checkSignature({ payload: forOther, signature: signed(privateKey, forOther), digest: DIGEST, repository: 'xing/app', keys });
  assert.match(!v1.ok ? v1.reason : '', new RegExp(`is for ${OTHER}, not this digest`));
  const elsewhere = payload(DIGEST, 'registry.example/xing/other');
  const v2 = checkSignature({ payload: elsewhere, signature: signed(privateKey, elsewhere), digest: DIGEST, repository: 'xing/app', keys });
  assert.match(!v2.ok ? v2.reason : '', /is for image registry\.example\/xing\/other, not repository xing\/app/);
  const notPayload = Buffer.from('{"hello":1}');
  const v3 = checkSignature({ payload: notPayload, signature: signed(privateKey, notPayload), digest: DIGEST, repository: 'xing/app', keys });
  assert.match(!v3.ok ? v3.reason : '', /not a cosign simple signing payload/);
});

test('docker-reference: the registry host and a tag are left out, Docker Hub names get library/', () => {
  assert.ok(sameRepository('harbor.example:443/xing/app', 'xing/app'));
  assert.ok(sameRepository('localhost/xing/app:1.0', 'xing/app'));
  assert.ok(sameRepository('docker.io/library/alpine', 'library/alpine'));
  assert.ok(sameRepository('alpine', 'library/alpine'));
  assert.ok(sameRepository('xing/app@sha256:00', 'xing/app'));
  assert.ok(!sameRepository('harbor.example/xing/app2', 'xing/app'));
  assert.ok(!sameRepository('harbor.example/app', 'xing/app'));
});

test('the .sig tag, and which manifests only carry signatures', () => {
  assert.equal(signatureTag(DIGEST), `sha256-${'a'.repeat(64)}.sig`);
  const sig = imageWith([{ mediaType: SIMPLE_SIGNING, digest: DIGEST, size: 200, annotations: { 'dev.cosignproject.cosign/signature': 'MEUC' } }]);
  assert.ok(isSignatureArtifact(sig));
  assert.equal(signatureLayers(sig).length, 1);
  const image = imageWith([
    { mediaType: SIMPLE_SIGNING, digest: DIGEST, size: 200 },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: OTHER, size: 300 },
  ]);
  assert.ok(!isSignatureArtifact(image), 'a runnable layer beside a payload makes it an image');
});

function imageWith(layers: object[]) {
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: OTHER, size: 10 };
  return parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers })));
}
