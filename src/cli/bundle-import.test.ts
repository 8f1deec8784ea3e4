/** @module cli/bundle-import.test — a tar bundle on disk is loaded by regions: blobs the store holds are never read (the process's read count stays far below their size), the others are handed over as regions holding their bytes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '../oci/digest.js';
import { REF_NAME } from '../storage/oci-layout.js';
import { openLayoutWriter } from '../storage/layout-writer.js';
import { openLayoutReader } from '../storage/oci-layout-reader.js';
import type { FileRegion } from '../storage/blob-files.js';
import { loadBlobs, type BlobSink } from './bundle-import.js';

const MiB = 1 << 20;

/** Bytes this process has read through system calls so far (Linux /proc). */
async function bytesRead(): Promise<number> {
  return Number(/^rchar: (\d+)$/m.exec(await readFile('/proc/self/io', 'utf8'))![1]);
}

async function* once(b: Buffer): AsyncGenerator<Uint8Array> {
  yield b;
}

const io = { out: () => undefined, err: () => undefined, stderr: new PassThrough(), tty: false, now: () => Date.now() };

test('a tar on disk: blobs already held are skipped without reading them; missing ones are handed over as regions of the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-import-tar-'));
  try {
    const blobs = Array.from({ length: 4 }, () => randomBytes(8 * MiB));
    const bundle = join(dir, 'b.tar');
    const writer = await openLayoutWriter(bundle);
    for (const b of blobs) await writer.addBlob(digestOf(b), b.length, once(b));
    const manifest = Buffer.from('{"schemaVersion":2}');
    await writer.addBytes(digestOf(manifest), manifest);
    await writer.finish([
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: digestOf(manifest),
        size: manifest.length,
        annotations: { [REF_NAME]: 'x.example/a:v1' },
      },
    ]);

    const held: BlobSink = { has: async () => true, put: async () => assert.fail('nothing is stored') };
    const before = await bytesRead();
    const skipped = await loadBlobs(await openLayoutReader(bundle), held, bundle, { quiet: true }, io);
    const read = (await bytesRead()) - before;
    assert.equal(skipped.present, 5);
    assert.ok(read < 2 * MiB, `read ${read} bytes of a ${32 * MiB}-byte bundle whose blobs are all held`);

    const regions = new Map<string, FileRegion & { size: number }>();
    const lacking: BlobSink = {
      has: async () => false,
      put: async () => assert.fail('a tar on disk is copied by region'),
      putRegion: async (digest, size, region) => void regions.set(digest, { ...region, size }),
    };
    const loaded = await loadBlobs(await openLayoutReader(bundle), lacking, bundle, { quiet: true }, io);
    assert.equal(loaded.stored, 5);
    const fh = await open(bundle, 'r');
    try {
      for (const b of [...blobs, manifest]) {
        const r = regions.get(digestOf(b))!;
        const back = Buffer.alloc(r.size);
        await fh.read(back, 0, r.size, r.offset);
        assert.ok(back.equals(b), `the region of ${digestOf(b)} holds its bytes`);
      }
    } finally {
      await fh.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
