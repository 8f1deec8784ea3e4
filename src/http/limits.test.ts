/** @module http/limits.test — bodies only where the API takes one; manifests of at most 4 MiB; actions per route. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { type OciError } from '../oci/errors.js';
import { checkRequest } from './limits.js';
import { actionOf, probeOf } from './guard.js';
import { matchRoute, type Route } from './routes.js';

const req = (method: string, headers: Record<string, string> = {}) => ({ method, headers }) as unknown as IncomingMessage;
const route = (path: string) => matchRoute(path) as Exclude<Route, { kind: 'base' } | { kind: 'catalog' }>;

test('bodies are refused where the API takes none; oversized manifests before they are read', () => {
  const manifest = route('/v2/a/manifests/v1');
  assert.throws(
    () => checkRequest(req('GET', { 'content-length': '5' }), manifest),
    (e: OciError) => e.status === 400,
  );
  assert.throws(
    () => checkRequest(req('HEAD', { 'transfer-encoding': 'chunked' }), manifest),
    (e: OciError) => e.status === 400,
  );
  checkRequest(req('GET', { 'content-length': '0' }), manifest);
  checkRequest(req('PUT', { 'content-length': String(4 * 1024 * 1024) }), manifest);
  assert.throws(
    () => checkRequest(req('PUT', { 'content-length': String(4 * 1024 * 1024 + 1) }), manifest),
    (e: OciError) => e.code === 'MANIFEST_INVALID' && e.status === 413,
  );
  checkRequest(req('PATCH', { 'content-length': '999999999' }), route('/v2/a/blobs/uploads/abc'));
});

test('actions and pass-through probes per route', () => {
  assert.equal(actionOf(route('/v2/a/manifests/v1'), 'GET'), 'pull');
  assert.equal(actionOf(route('/v2/a/manifests/v1'), 'PUT'), 'push');
  assert.equal(actionOf(route('/v2/a/manifests/v1'), 'DELETE'), 'delete');
  assert.equal(actionOf(route('/v2/a/blobs/uploads/'), 'POST'), 'push');
  assert.equal(actionOf(route('/v2/a/blobs/uploads/x'), 'GET'), 'push');
  assert.equal(actionOf(route('/v2/a/tags/list'), 'GET'), 'pull');
  assert.deepEqual(probeOf(route('/v2/a/blobs/sha256:ab')), { method: 'HEAD', path: 'blobs/sha256:ab' });
  assert.deepEqual(probeOf(route('/v2/a/tags/list')), { method: 'GET', path: 'tags/list?n=1' });
});
