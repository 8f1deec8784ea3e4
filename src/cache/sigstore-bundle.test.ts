/** @module cache/sigstore-bundle.test — Sigstore bundles: key pairs, and keyless ones from a self-made CA in a trusted_root.json. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { loadTrustedRoot, type BundleTrust } from '../config/verify.js';
import { checkBundle } from './sigstore-bundle.js';

const { asn1 } = forge;
const T = asn1.Type;
const U = asn1.Class.UNIVERSAL;
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const IN_TOTO = 'application/vnd.in-toto+json';
const NOW = Date.parse('2026-06-01T00:00:00Z');

type Node = forge.asn1.Asn1;
const seq = (...v: Node[]) => asn1.create(U, T.SEQUENCE, true, v);
const oid = (o: string) => asn1.create(U, T.OID, false, asn1.oidToDer(o).getBytes());
const raw = (der: Buffer) => asn1.fromDer(der.toString('binary'));
const toDer = (n: Node) => Buffer.from(asn1.toDer(n).getBytes(), 'binary');
const name = (cn: string) => seq(asn1.create(U, T.SET, true, [seq(oid('2.5.4.3'), asn1.create(U, T.UTF8, false, cn))]));
const ext = (o: string, value: Node) => seq(oid(o), asn1.create(U, T.OCTETSTRING, false, asn1.toDer(value).getBytes()));

/** An X.509 certificate signed with ECDSA P-256 (what @sigstore/core checks), built with forge's ASN.1 and node:crypto. */
function certificate(o: { subject: string; issuer: string; key: KeyObject; signer: KeyObject; ca: boolean; email?: string; serial: number }): Buffer {
  const extensions = [ext('2.5.29.19', o.ca ? seq(asn1.create(U, T.BOOLEAN, false, '\xff')) : seq())];
  if (o.email) extensions.push(ext('2.5.29.17', seq(asn1.create(asn1.Class.CONTEXT_SPECIFIC, 1, false, o.email))));
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const tbs = seq(
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [asn1.create(U, T.INTEGER, false, '\x02')]),
    asn1.create(U, T.INTEGER, false, String.fromCharCode(o.serial)),
    ecdsaSha256,
    name(o.issuer),
    seq(asn1.create(U, T.UTCTIME, false, '250101000000Z'), asn1.create(U, T.UTCTIME, false, '350101000000Z')),
    name(o.subject),
    raw(o.key.export({ type: 'spki', format: 'der' })),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 3, true, [seq(...extensions)]),
  );
  const signature = sign('sha256', toDer(tbs), o.signer);
  return toDer(seq(tbs, ecdsaSha256, asn1.create(U, T.BITSTRING, false, '\x00' + signature.toString('binary'))));
}

function statement(digest: string, image: string): Buffer {
  const [alg, hex] = digest.split(':') as [string, string];
  return Buffer.from(
    JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1', predicateType: 'x', subject: [{ name: image, digest: { [alg]: hex } }], predicate: {} }),
  );
}

/** A DSSE bundle as cosign --new-bundle-format writes it: a key hint, or a certificate. */
function bundle(payload: Buffer, signer: KeyObject, material: Record<string, unknown>): Buffer {
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${IN_TOTO.length} ${IN_TOTO} ${payload.length} `), payload]);
  return Buffer.from(
    JSON.stringify({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: material,
      dsseEnvelope: { payload: payload.toString('base64'), payloadType: IN_TOTO, signatures: [{ sig: sign('sha256', pae, signer).toString('base64') }] },
    }),
  );
}

const ec = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const mine = ec();
const theirs = ec();
const keys = [{ file: 'cosign.pub', key: mine.publicKey }];

test('a key-pair bundle verifies with a configured key, and only for its digest and repository', () => {
  const hint = { publicKey: { hint: 'aGludA==' } };
  const good = bundle(statement(DIGEST, 'registry.example:5000/xing/app'), mine.privateKey, hint);
  assert.deepEqual(checkBundle({ bytes: good, digest: DIGEST, repository: 'xing/app', keys, now: () => NOW }), { ok: true, file: 'cosign.pub' });
  const other = checkBundle({
    bytes: bundle(statement(DIGEST, 'r.example/xing/app'), theirs.privateKey, hint),
    digest: DIGEST,
    repository: 'xing/app',
    keys,
    now: () => NOW,
  });
  assert.match(other.ok ? '' : other.reason, /does not verify with any configured key \(cosign\.pub\)/);
  const elsewhere = checkBundle({ bytes: good, digest: DIGEST, repository: 'xing/other', keys, now: () => NOW });
  assert.match(elsewhere.ok ? '' : elsewhere.reason, /is for image registry\.example:5000\/xing\/app, not repository xing\/other/);
  const digest = `sha256:${'cd'.repeat(32)}`;
  const wrong = checkBundle({ bytes: good, digest, repository: 'xing/app', keys, now: () => NOW });
  assert.match(wrong.ok ? '' : wrong.reason, /statement is not about sha256:cdcd/);
  const junk = checkBundle({ bytes: Buffer.from('{"mediaType":"x"}'), digest: DIGEST, repository: 'xing/app', keys, now: () => NOW });
  assert.match(junk.ok ? '' : junk.reason, /not valid/);
});

test('a keyless bundle from a CA of the trusted root: refused without a timestamp by default, verified for a configured identity when timestamps are optional', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-sigstore-'));
  try {
    const ca = ec();
    const caCert = certificate({ subject: 'test CA', issuer: 'test CA', key: ca.publicKey, signer: ca.privateKey, ca: true, serial: 1 });
    const leaf = ec();
    const leafCert = certificate({
      subject: 'signer',
      issuer: 'test CA',
      key: leaf.publicKey,
      signer: ca.privateKey,
      ca: false,
      email: 'ci@xing.example',
      serial: 2,
    });
    const rogue = ec();
    const rogueCert = certificate({
      subject: 'signer',
      issuer: 'test CA',
      key: leaf.publicKey,
      signer: rogue.privateKey,
      ca: false,
      email: 'ci@xing.example',
      serial: 3,
    });
    const file = path.join(dir, 'trusted_root.json');
    writeFileSync(
      file,
      JSON.stringify({
        mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
        certificateAuthorities: [
          {
            subject: { commonName: 'test CA' },
            uri: 'https://ca.example',
            certChain: { certificates: [{ rawBytes: caCert.toString('base64') }] },
            validFor: { start: '2025-01-01T00:00:00Z' },
          },
        ],
        tlogs: [],
        ctlogs: [],
        timestampAuthorities: [],
      }),
    );
    const material = loadTrustedRoot(file);
    assert.notEqual(typeof material, 'string', String(material));
    if (typeof material === 'string') return;
    const trust = (timestamps: BundleTrust['timestamps'], subject = 'ci@xing.example'): BundleTrust => ({
      file,
      material,
      identities: [{ subject }],
      timestamps,
    });
    const payload = statement(DIGEST, 'registry.example/xing/app');
    const signed = bundle(payload, leaf.privateKey, { certificate: { rawBytes: leafCert.toString('base64') } });
    const check = (bytes: Buffer, keyless: BundleTrust) => checkBundle({ bytes, digest: DIGEST, repository: 'xing/app', keys: [], keyless, now: () => NOW });

    const strict = check(signed, trust('required'));
    assert.match(strict.ok ? '' : strict.reason, /no transparency log entry or signed timestamp/);
    assert.deepEqual(check(signed, trust('optional')), { ok: true, file });
    const stranger = check(signed, trust('optional', 'someone@else.example'));
    assert.match(stranger.ok ? '' : stranger.reason, /not a configured identity/);
    const forged = check(bundle(payload, leaf.privateKey, { certificate: { rawBytes: rogueCert.toString('base64') } }), trust('optional'));
    assert.equal(forged.ok, false, 'a certificate the CA did not sign');
    const wrongKey = check(bundle(payload, theirs.privateKey, { certificate: { rawBytes: leafCert.toString('base64') } }), trust('optional'));
    assert.equal(wrongKey.ok, false, 'a signature by another key than the certificate');
    const noRoot = checkBundle({ bytes: signed, digest: DIGEST, repository: 'xing/app', keys, now: () => NOW });
    assert.match(noRoot.ok ? '' : noRoot.reason, /carries a certificate \(keyless\)/);
    assert.match(String(loadTrustedRoot(path.join(dir, 'missing.json'))), /cannot read trusted root file .*no such file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
