/** @module http/params.test — query parameter rules: n, last, artifactType, ns and digests, each refusal a 400 naming the parameter. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OciError } from '../oci/errors.js';
import { MAX_PAGE, artifactTypeFilter, checkQuery, pageSize, pageStart, registryNamespace } from './params.js';
import type { Route } from './routes.js';

const url = (query: string) => new URL(`http://berth.invalid/v2/_catalog?${query}`);
const DIGEST = `sha256:${'a'.repeat(64)}`;

function refused(run: () => unknown, name: string, code: string): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof OciError, String(err));
    assert.equal(err.status, 400, err.message);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, new RegExp(`^query parameter ${name}=`));
    assert.ok(Object.hasOwn(err.detail as object, name), JSON.stringify(err.detail));
    return true;
  });
}

test('n: decimal digits only; absent or empty is the full page, 0 lists nothing, above the page it is clamped', () => {
  assert.equal(pageSize(url('')), MAX_PAGE);
  assert.equal(pageSize(url('n=')), MAX_PAGE);
  assert.equal(pageSize(url('n=0')), 0);
  assert.equal(pageSize(url('n=7')), 7);
  assert.equal(pageSize(url('n=007')), 7);
  assert.equal(pageSize(url(`n=${MAX_PAGE + 1}`)), MAX_PAGE);
  assert.equal(pageSize(url(`n=${Number.MAX_SAFE_INTEGER}`)), MAX_PAGE);
  for (const bad of ['x', '-1', '1.5', '1e309', '1e3', '%00', '12345678901234567890', '+5', '%205', '0x10', 'Infinity', '5%20', '١']) {
    refused(() => pageSize(url(`n=${bad}`)), 'n', 'PAGINATION_NUMBER_INVALID');
  }
});

test('last: a tag on tag lists, a repository name on the catalog; empty is absent', () => {
  assert.equal(pageStart(url('last='), 'tag'), undefined);
  assert.equal(pageStart(url('last=v1.2_rc-3'), 'tag'), 'v1.2_rc-3');
  assert.equal(pageStart(url('last=library/alpine'), 'repository'), 'library/alpine');
  for (const bad of ['%00', '%ff', '..%2F..', 'a%20b', '-x', 'x'.repeat(129)]) refused(() => pageStart(url(`last=${bad}`), 'tag'), 'last', 'UNSUPPORTED');
  for (const bad of ['%00', 'Upper', 'a//b', '/a', 'a/', `${'a'.repeat(256)}`])
    refused(() => pageStart(url(`last=${bad}`), 'repository'), 'last', 'NAME_INVALID');
});

test('artifactType: a media type', () => {
  assert.equal(artifactTypeFilter(url('')), undefined);
  assert.equal(artifactTypeFilter(url('artifactType=application/vnd.example.sbom.v1%2Bjson')), 'application/vnd.example.sbom.v1+json');
  for (const bad of ['%00', 'nomediatype', 'a/b/c', '/json', 'application/', 'application/json;%20x=1', `application/${'x'.repeat(200)}`]) {
    refused(() => artifactTypeFilter(url(`artifactType=${bad}`)), 'artifactType', 'UNSUPPORTED');
  }
});

test('ns: a registry host with an optional port', () => {
  for (const good of ['docker.io', 'harbor.xing.com:8443', '10.0.0.5:5000', '[::1]:5000', 'localhost'])
    assert.equal(registryNamespace(url(`ns=${good}`)), good);
  for (const bad of ['%00', 'a%20b', '-bad', 'a..b', 'host:port', 'a/b', `${'a'.repeat(300)}.com`])
    refused(() => registryNamespace(url(`ns=${bad}`)), 'ns', 'NAME_INVALID');
});

test('checkQuery: the parameters each route reads, digests included', () => {
  const uploads: Route = { kind: 'uploads', name: 'a' };
  const upload: Route = { kind: 'upload', name: 'a', id: 'x' };
  checkQuery(url(`mount=${DIGEST}&from=b/c&digest=${DIGEST}`), uploads, 'POST');
  refused(() => checkQuery(url('mount=sha256:zz&from=b'), uploads, 'POST'), 'mount', 'DIGEST_INVALID');
  refused(() => checkQuery(url(`mount=${DIGEST}&from=B%00`), uploads, 'POST'), 'from', 'NAME_INVALID');
  refused(() => checkQuery(url('digest=md5:abc'), uploads, 'POST'), 'digest', 'DIGEST_INVALID');
  refused(() => checkQuery(url(`digest=${DIGEST.toUpperCase()}`), upload, 'PUT'), 'digest', 'DIGEST_INVALID');
  refused(() => checkQuery(url('n=x'), { kind: 'catalog' }, 'GET'), 'n', 'PAGINATION_NUMBER_INVALID');
  refused(() => checkQuery(url('last=%00'), { kind: 'tags', name: 'a' }, 'GET'), 'last', 'UNSUPPORTED');
  refused(() => checkQuery(url('artifactType=x'), { kind: 'referrers', name: 'a', digest: DIGEST }, 'GET'), 'artifactType', 'UNSUPPORTED');
  refused(() => checkQuery(url('ns=%00'), { kind: 'base' }, 'GET'), 'ns', 'NAME_INVALID');
  // Parameters a route does not read are not its business.
  checkQuery(url('n=x&digest=nope'), { kind: 'manifest', name: 'a', reference: 'v1' }, 'GET');
});
