/** @module oci/refs.test — image references and platforms as docker and containerd read them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImageReferenceError, formatImageReference, parseImageReference } from './image-ref.js';
import { formatPlatform, parsePlatform, platformMatches, selectManifests } from './platform.js';
import type { Descriptor } from './manifest.js';

const D = `sha256:${'a'.repeat(64)}`;

test('image references: registry only when it looks like a host, tag after the last slash, digest wins', () => {
  assert.deepEqual(parseImageReference('harbor.xing.com/xing/app:v1'), {
    registry: 'harbor.xing.com',
    repository: 'xing/app',
    reference: { kind: 'tag', tag: 'v1' },
    tag: 'v1',
    digest: undefined,
  });
  const local = parseImageReference('127.0.0.1:5000/app');
  assert.equal(local.registry, '127.0.0.1:5000');
  assert.deepEqual(local.reference, { kind: 'tag', tag: 'latest' });
  assert.equal(parseImageReference('localhost/x').registry, 'localhost');
  const plain = parseImageReference('xing/app');
  assert.equal(plain.registry, undefined);
  assert.equal(plain.repository, 'xing/app');
  const pinned = parseImageReference(`docker.io/library/nginx:1.27@${D}`);
  assert.deepEqual(pinned.reference, { kind: 'digest', digest: D });
  assert.equal(formatImageReference(pinned), `docker.io/library/nginx:1.27@${D}`);
  assert.equal(formatImageReference(parseImageReference(`app@${D}`)), `app@${D}`);
  for (const bad of ['', 'Xing/App', 'app:bad tag', 'app@sha256:123', 'a//b', 'host.io/']) {
    assert.throws(() => parseImageReference(bad), ImageReferenceError, bad);
  }
});

test('platforms: aliases and implied variants follow containerd', () => {
  assert.deepEqual(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/aarch64'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/armhf'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.equal(formatPlatform(parsePlatform('Linux/ARM/v6')), 'linux/arm/v6');
  assert.throws(() => parsePlatform('linux'), /os\/arch/);
  assert.ok(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' }));
  assert.ok(platformMatches(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' }));
  assert.ok(!platformMatches(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v6' }));
  assert.ok(platformMatches(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64', variant: 'v3' }));
  assert.ok(!platformMatches(parsePlatform('linux/amd64'), { os: 'unknown', architecture: 'unknown' }));
  const entry = (architecture: string, variant?: string): Descriptor => ({
    mediaType: 'm',
    digest: D,
    size: 1,
    platform: { os: 'linux', architecture, variant },
  });
  const entries = [
    entry('amd64'),
    entry('arm64', 'v8'),
    entry('arm', 'v7'),
    { mediaType: 'm', digest: D, size: 1, platform: { os: 'unknown', architecture: 'unknown' } },
  ];
  assert.equal(selectManifests(entries, [parsePlatform('linux/arm64'), parsePlatform('linux/amd64')]).length, 2);
  assert.equal(selectManifests(entries, 'all').length, 4);
});
