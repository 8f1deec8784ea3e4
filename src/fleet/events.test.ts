/** @module fleet/events.test — the push notifications the hub reads: distribution's envelope, Harbor's webhook in JSON and CloudEvents form. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pushedImages } from './events.js';
import { imageFromManifestUrl, parsePreheatRequest } from './harbor.js';

const D = `sha256:${'a'.repeat(64)}`;
const resources = [{ digest: D, tag: 'v1', resource_url: `harbor.xing.com/library/app:v1` }];
const repository = { name: 'app', namespace: 'library', repo_full_name: 'library/app', repo_type: 'private' };

test('distribution envelope: manifest pushes count, blob pushes and pulls do not', () => {
  const events = [
    {
      action: 'push',
      target: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: D,
        repository: 'xing/app',
        url: `http://reg:5000/v2/xing/app/manifests/${D}`,
        tag: 'v1',
      },
      request: { host: 'reg:5000' },
    },
    { action: 'push', target: { mediaType: 'application/octet-stream', digest: D, repository: 'xing/app', url: `http://reg:5000/v2/xing/app/blobs/${D}` } },
    {
      action: 'pull',
      target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D, repository: 'xing/app', url: `http://reg:5000/v2/xing/app/manifests/${D}` },
    },
  ];
  assert.deepEqual(pushedImages({ events }), [{ image: 'reg:5000/xing/app:v1', digest: D }]);
  const untagged = [{ ...events[0], target: { ...events[0]!.target, tag: undefined } }];
  assert.deepEqual(pushedImages({ events: untagged }), [{ image: `reg:5000/xing/app@${D}`, digest: D }]);
});

test('Harbor webhook, JSON form (PUSH_ARTIFACT) and CloudEvents form (harbor.artifact.pushed)', () => {
  const json = { type: 'PUSH_ARTIFACT', occur_at: 1, operator: 'admin', event_data: { resources, repository } };
  assert.deepEqual(pushedImages(json), [{ image: 'harbor.xing.com/library/app:v1', digest: D }]);
  const ce = {
    specversion: '1.0',
    id: 'x',
    source: '/projects/1/webhook/policies/3',
    type: 'harbor.artifact.pushed',
    datacontenttype: 'application/json',
    data: { resources, repository },
    operator: 'admin',
  };
  assert.deepEqual(pushedImages(ce), [{ image: 'harbor.xing.com/library/app:v1', digest: D }]);
  assert.deepEqual(pushedImages({ ...ce, type: 'harbor.artifact.pulled' }), []);
  assert.deepEqual(pushedImages({ ...json, type: 'DELETE_ARTIFACT' }), []);
  assert.throws(() => pushedImages({ hello: 1 }), /not a notification/);
});

test('Harbor preheat payloads: manifest URL to image reference', () => {
  assert.equal(imageFromManifestUrl('https://harbor.xing.com/v2/library/app/manifests/v1'), 'harbor.xing.com/library/app:v1');
  assert.equal(imageFromManifestUrl(`http://10.0.0.5:8080/v2/a/b/c/manifests/${D}`), `10.0.0.5:8080/a/b/c@${D}`);
  assert.throws(() => imageFromManifestUrl('https://h/v2/app/blobs/x'), /not a manifest URL/);
  assert.deepEqual(parsePreheatRequest({ type: 'image', url: 'https://h.io/v2/x/manifests/v1', headers: {}, image: 'x', tag: 'v1', digest: D }), {
    image: 'h.io/x:v1',
    url: 'https://h.io/v2/x/manifests/v1',
    digest: D,
  });
});
