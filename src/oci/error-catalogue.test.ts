/** @module oci/error-catalogue.test — the catalogue's constructors give each meaning its code, status and headers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as catalogue from './error-catalogue.js';
import { ERROR_CODES, OciError } from './errors.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

test('every constructor answers with a catalogued code; statuses other than the code own are the named exceptions', () => {
  const cases: Array<[OciError, string, number]> = [
    [catalogue.blobUnknown(DIGEST), 'BLOB_UNKNOWN', 404],
    [catalogue.manifestUnknown('library/alpine', 'latest'), 'MANIFEST_UNKNOWN', 404],
    [catalogue.manifestBlobUnknown('missing', {}), 'MANIFEST_BLOB_UNKNOWN', 400],
    [catalogue.tooManyTagParameters(10), 'MANIFEST_INVALID', 414],
    [catalogue.peerDigestMismatch('peer', DIGEST), 'DIGEST_INVALID', 502],
    [catalogue.bodyTooLarge('big'), 'SIZE_INVALID', 413],
    [catalogue.conflict('pinned'), 'DENIED', 409],
    [catalogue.badRequest('bad'), 'UNSUPPORTED', 400],
    [catalogue.noSuchEndpoint('GET', '/nowhere'), 'UNSUPPORTED', 404],
    [catalogue.expectationFailed('nothing'), 'UNSUPPORTED', 417],
    [catalogue.unparsableRequest(431, 'long'), 'UNSUPPORTED', 431],
    [catalogue.badGateway('odd answer'), 'UNAVAILABLE', 502],
    [catalogue.loopDetected('loop'), 'UNAVAILABLE', 508],
    [catalogue.replicaNotLive('peer'), 'UNAVAILABLE', 409],
    [catalogue.internalError('boom', 'r1'), 'UNKNOWN', 500],
  ];
  for (const [err, code, status] of cases) {
    assert.ok(err instanceof OciError);
    assert.ok(err.code in ERROR_CODES);
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, status, err.message);
  }
});

test('headers a client acts on travel with the error', () => {
  assert.deepEqual(catalogue.tooManyRequests('wait', 5).headers, { 'Retry-After': '5' });
  assert.deepEqual(catalogue.methodNotAllowed('PUT', ['GET', 'HEAD']).headers, { Allow: 'GET, HEAD' });
  assert.equal(catalogue.methodNotAllowed('PUT', ['GET']).message, 'PUT is not supported on this endpoint');
  assert.deepEqual(catalogue.rangeNotSatisfiable('outside', 10).headers, { 'Content-Range': 'bytes */10' });
  assert.deepEqual(catalogue.unauthorized('who?', 'Basic realm="berth"').headers, { 'WWW-Authenticate': 'Basic realm="berth"' });
  assert.deepEqual(catalogue.unauthorized('who?').headers, {});
  const range = catalogue.uploadRangeInvalid('out of order', 'u1', 7, '0-6');
  assert.deepEqual(range.headers, { Range: '0-6', 'Docker-Upload-UUID': 'u1' });
  assert.deepEqual(range.detail, { offset: 7 });
});

test('a restated error keeps its code, status and detail', () => {
  const e = catalogue.restated(catalogue.manifestBlobUnknown('missing', { count: 1 }), 'write-through push failed: missing');
  assert.equal(e.code, 'MANIFEST_BLOB_UNKNOWN');
  assert.equal(e.status, 400);
  assert.deepEqual(e.detail, { count: 1 });
  assert.equal(e.message, 'write-through push failed: missing');
});
