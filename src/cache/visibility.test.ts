/** @module cache/visibility.test — a stored blob is served only under repositories known to reference it. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { digestOf } from '../oci/digest.js';
import { type OciError } from '../oci/errors.js';
import { BlobStore } from '../storage/blob-files.js';
import { MetadataStore } from '../storage/metadata.js';
import { LocalBlobIndex, LocalRepositoryIndex } from '../storage/local-index.js';
import { BlobCache } from './blob-cache.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-visibility-'));
const metadata = new MetadataStore(dir, Date.now);
after(() => {
  metadata.close();
  rmSync(dir, { recursive: true, force: true });
});

test('plain registry: a blob on disk is BLOB_UNKNOWN under a repository that does not reference it', async () => {
  const blobs = new BlobStore(dir);
  await blobs.init();
  const body = Buffer.from('layer of team-a/private');
  const digest = digestOf(body);
  const writer = await blobs.createWriter('sha256');
  await writer.write(body);
  await writer.commit(digest, body.length);
  metadata.putBlob(digest, body.length);
  metadata.linkBlob('', 'team-a/private', digest);
  const cache = new BlobCache({
    blobs,
    index: new LocalBlobIndex(metadata),
    repos: new LocalRepositoryIndex(metadata),
    logger: pino({ level: 'silent' }),
    now: Date.now,
  });
  const local = (repository: string) => ({ upstream: undefined, key: '', repository });

  assert.equal((await cache.get(local('team-a/private'), digest)).size, body.length);
  assert.equal((await cache.head(local('team-a/private'), digest)).size, body.length);
  for (const probe of [() => cache.get(local('team-b/public'), digest), () => cache.head(local('team-b/public'), digest)]) {
    await assert.rejects(probe(), (e: OciError) => e.code === 'BLOB_UNKNOWN' && e.status === 404);
  }
  metadata.putManifest('', 'team-b/public', {
    digest: digestOf(Buffer.from('m')),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 1,
    children: [digest],
  });
  assert.equal((await cache.get(local('team-b/public'), digest)).size, body.length, 'once a manifest of the repository references it');
});
