/** @module storage/oci-layout.test — layouts written as a directory and as a tar read back byte for byte; mismatches refused; index entries merged by name. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, createWriteStream } from 'node:fs';
import { execFile } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '../oci/digest.js';
import { BlobMismatchError, REF_NAME, blobPath, mergeIndex, openTarStreamWriter, parseLayoutIndex } from './oci-layout.js';
import { openLayoutWriter } from './layout-writer.js';
import { openLayoutReader, type LayoutBlob } from './oci-layout-reader.js';

const MT = 'application/vnd.oci.image.manifest.v1+json';

async function* chunks(data: Buffer, size = 7000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of source) parts.push(c);
  return Buffer.concat(parts);
}

async function readAll(path: string): Promise<Map<string, Buffer>> {
  const reader = await openLayoutReader(path);
  const found = new Map<string, Buffer>();
  for await (const b of reader.blobs()) found.set(b.digest, await collect(b.read()));
  return found;
}

for (const kind of ['dir', 'tar'] as const) {
  test(`a ${kind} layout reads back every blob and the named index`, async () => {
    const work = await mkdtemp(join(tmpdir(), 'berth-layout-'));
    try {
      const path = join(work, kind === 'tar' ? 'b.tar' : 'b');
      const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
      const small = Buffer.from('{"schemaVersion":2}');
      const writer = await openLayoutWriter(path);
      await writer.addBlob(digestOf(big), big.length, chunks(big));
      await writer.addBytes(digestOf(small), small);
      const entry = { mediaType: MT, digest: digestOf(small), size: small.length, annotations: { [REF_NAME]: 'harbor.xing.com/xing/app:v1' } };
      await writer.finish([entry]);
      const reader = await openLayoutReader(path);
      const found = new Map<string, Buffer>();
      for await (const b of reader.blobs()) found.set(b.digest, await collect(b.read()));
      assert.deepEqual([...found.keys()].sort(), [digestOf(big), digestOf(small)].sort());
      assert.ok(found.get(digestOf(big))!.equals(big));
      assert.deepEqual((await reader.index()).manifests, [entry]);
      if (kind === 'dir') {
        assert.equal(JSON.parse(await readFile(join(path, 'oci-layout'), 'utf8')).imageLayoutVersion, '1.0.0');
        assert.equal((await stat(join(path, blobPath(digestOf(big))))).size, big.length);
      } else {
        assert.deepEqual(await readdir(work), ['b.tar']);
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  test(`a ${kind} layout refuses bytes that do not match their digest and keeps nothing of them`, async () => {
    const work = await mkdtemp(join(tmpdir(), 'berth-layout-'));
    try {
      const path = join(work, kind === 'tar' ? 'b.tar' : 'b');
      const good = Buffer.from('good bytes');
      const writer = await openLayoutWriter(path);
      await assert.rejects(writer.addBlob(digestOf(Buffer.from('other')), good.length, chunks(good)), BlobMismatchError);
      if (kind === 'tar') {
        await writer.abort();
        assert.deepEqual(await readdir(work), []);
      } else {
        await writer.addBytes(digestOf(good), good);
        await writer.finish([]);
        assert.deepEqual([...(await readAll(path)).keys()], [digestOf(good)]);
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

test('a tar blob left unread is skipped over', async () => {
  const work = await mkdtemp(join(tmpdir(), 'berth-layout-'));
  try {
    const path = join(work, 'b.tar');
    const blobs = [Buffer.alloc(100_000, 1), Buffer.alloc(5, 2), Buffer.alloc(70_000, 3)];
    const writer = await openLayoutWriter(path);
    for (const b of blobs) await writer.addBlob(digestOf(b), b.length, chunks(b));
    await writer.finish([]);
    const reader = await openLayoutReader(path);
    const seen: LayoutBlob[] = [];
    const read: Buffer[] = [];
    for await (const b of reader.blobs()) {
      seen.push(b);
      if (b.size === 5) read.push(await collect(b.read()));
    }
    assert.equal(seen.length, 3);
    assert.deepEqual(read, [blobs[1]]);
    assert.deepEqual((await reader.index()).manifests, []);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('a tar read from a pipe is streamed through once: every blob, none given as a region, and the index', async () => {
  const work = await mkdtemp(join(tmpdir(), 'berth-layout-'));
  try {
    const file = join(work, 'b.tar');
    const blobs = [Buffer.alloc(100_000, 1), Buffer.alloc(5, 2)];
    const writer = await openLayoutWriter(file);
    for (const b of blobs) await writer.addBlob(digestOf(b), b.length, chunks(b));
    await writer.finish([]);
    const pipe = join(work, 'pipe');
    await promisify(execFile)('mkfifo', [pipe]);
    const feeding = pipeline(createReadStream(file), createWriteStream(pipe));
    const reader = await openLayoutReader(pipe);
    const seen: Array<[string, boolean, number]> = [];
    for await (const b of reader.blobs()) seen.push([b.digest, b.region !== undefined, (await collect(b.read())).length]);
    await feeding;
    assert.deepEqual(
      seen,
      blobs.map((b) => [digestOf(b), false, b.length]),
    );
    assert.deepEqual((await reader.index()).manifests, []);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('a directory export run again adds entries and replaces those of the same name', async () => {
  const a = { mediaType: MT, digest: digestOf(Buffer.from('a')), size: 1, annotations: { [REF_NAME]: 'r/app:v1' } };
  const b = { mediaType: MT, digest: digestOf(Buffer.from('b')), size: 1, annotations: { [REF_NAME]: 'r/app:v2' } };
  const a2 = { ...a, digest: digestOf(Buffer.from('c')) };
  assert.deepEqual(mergeIndex([a, b], [a2]).manifests, [b, a2]);
});

test('index.json must be an index with digests and sizes; anything else is named', async () => {
  assert.throws(() => parseLayoutIndex('nope'), /not valid JSON/);
  assert.throws(() => parseLayoutIndex('{"schemaVersion":1,"manifests":[]}'), /not an OCI image index/);
  assert.throws(() => parseLayoutIndex('{"schemaVersion":2,"manifests":[{"digest":"sha256:../../x","size":1}]}'), /manifests\[0\]/);
  const work = await mkdtemp(join(tmpdir(), 'berth-layout-'));
  try {
    await assert.rejects(openLayoutReader(join(work, 'missing')), /does not exist/);
    await assert.rejects(openLayoutReader(work), /no oci-layout file/);
    await writeFile(join(work, 'x.tar'), Buffer.alloc(1024));
    const reader = await openLayoutReader(join(work, 'x.tar'));
    for await (const b of reader.blobs()) assert.fail(`unexpected ${b.digest}`);
    await assert.rejects(reader.index(), /no index.json and no oci-layout/);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('a directory writer given a hasher copies whole files, verified: a file that does not match its digest is refused and leaves nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-layout-file-'));
  const { FileHasher } = await import('../util/file-hasher.js');
  const hasher = new FileHasher(1);
  try {
    const bytes = Buffer.from('a layer, as a store holds it');
    const source = join(dir, 'stored');
    await writeFile(source, bytes);
    const writer = await openLayoutWriter(join(dir, 'out'), hasher);
    assert.equal(typeof writer.addFile, 'function', 'a directory writer with a hasher copies files');
    const digest = digestOf(bytes);
    await writer.addFile!(digest, bytes.length, source);
    assert.deepEqual(await readFile(join(dir, 'out', blobPath(digest))), bytes);
    const wrong = digestOf(Buffer.from('another layer'));
    await assert.rejects(writer.addFile!(wrong, bytes.length, source), BlobMismatchError);
    assert.deepEqual(await readdir(join(dir, 'out', 'blobs', 'sha256')), [digest.slice(7)]);
  } finally {
    await hasher.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a tar streamed to a client, its blob hashed elsewhere (addHashed), lands when the hash agrees; a disagreeing hash, or a body of the wrong length, spoils the archive', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-layout-hashed-'));
  try {
    const bytes = Buffer.from('a layer streamed into a tar');
    const digest = digestOf(bytes);
    const body = async function* (b: Buffer) {
      yield b;
    };
    const good = await openTarStreamWriter(createWriteStream(join(dir, 'good.tar')));
    await good.addHashed!(digest, bytes.length, body(bytes), Promise.resolve({ digest, size: bytes.length }));
    await good.finish([]);
    const blobs: string[] = [];
    for await (const b of (await openLayoutReader(join(dir, 'good.tar'))).blobs()) {
      blobs.push(b.digest);
      for await (const _ of b.read());
    }
    assert.deepEqual(blobs, [digest]);

    const wrong = await openTarStreamWriter(createWriteStream(join(dir, 'wrong.tar')));
    await assert.rejects(
      wrong.addHashed!(digest, bytes.length, body(bytes), Promise.resolve({ digest: digestOf(Buffer.from('x')), size: bytes.length })),
      BlobMismatchError,
    );
    await assert.rejects(wrong.addHashed!(digest, bytes.length + 1, body(bytes), Promise.resolve({ digest, size: bytes.length + 1 })), BlobMismatchError);
    await wrong.abort();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
