/** @module storage/tar-file-writer.test — a tar bundle written by position: GNU tar lists and extracts it byte for byte (long names by pax), stored files copied in at once by the hasher's threads, a file that misses its digest refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { digestOf } from '../oci/digest.js';
import { FileHasher } from '../util/file-hasher.js';
import { BlobMismatchError, REF_NAME, blobPath } from './oci-layout.js';
import { openLayoutWriter } from './layout-writer.js';
import { tarHeader } from './tar-file-writer.js';

const exec = promisify(execFile);

test('stored files copied in at once, streamed blobs and a sha512 blob (a pax name): GNU tar extracts each byte for byte; the index names the image', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-tar-writer-'));
  const hasher = new FileHasher(2);
  try {
    const files = [randomBytes(5 << 20), randomBytes(1), randomBytes(0), randomBytes(70_001)];
    for (const [i, b] of files.entries()) await writeFile(join(dir, `stored${i}`), b);
    const streamed = randomBytes(3 << 20);
    const long = Buffer.from('a blob named by its sha512');
    const longDigest = `sha512:${createHash('sha512').update(long).digest('hex')}`;
    const out = join(dir, 'b.tar');
    const writer = await openLayoutWriter(out, hasher);
    assert.equal(typeof writer.addFile, 'function');
    await Promise.all([
      ...files.map((b, i) => writer.addFile!(digestOf(b), b.length, join(dir, `stored${i}`))),
      writer.addBlob(
        digestOf(streamed),
        streamed.length,
        (async function* () {
          yield streamed.subarray(0, 1000);
          yield streamed.subarray(1000);
        })(),
      ),
      writer.addBytes(longDigest, long),
    ]);
    assert.equal(await writer.has(digestOf(files[0]!), files[0]!.length), true);
    const entry = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: digestOf(files[1]!),
      size: 1,
      annotations: { [REF_NAME]: 'x.example/a:v1' },
    };
    await writer.finish([entry]);
    assert.deepEqual(await readdir(dir).then((n) => n.filter((x) => x.startsWith('b.tar'))), ['b.tar']);
    const into = join(dir, 'x');
    await mkdir(into);
    await exec('tar', ['-xf', out, '-C', into]);
    for (const b of [...files, streamed]) assert.ok((await readFile(join(into, blobPath(digestOf(b))))).equals(b), digestOf(b));
    assert.ok((await readFile(join(into, blobPath(longDigest)))).equals(long));
    assert.deepEqual(JSON.parse(await readFile(join(into, 'index.json'), 'utf8')).manifests, [entry]);
    assert.equal(JSON.parse(await readFile(join(into, 'oci-layout'), 'utf8')).imageLayoutVersion, '1.0.0');
  } finally {
    await hasher.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a stored file that misses its digest or size is refused; the aborted archive leaves nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-tar-writer-'));
  const hasher = new FileHasher(1);
  try {
    const bytes = Buffer.from('a layer as the store holds it');
    await writeFile(join(dir, 'stored'), bytes);
    const writer = await openLayoutWriter(join(dir, 'b.tar'), hasher);
    await assert.rejects(writer.addFile!(digestOf(Buffer.from('another')), bytes.length, join(dir, 'stored')), BlobMismatchError);
    await assert.rejects(writer.addFile!(digestOf(bytes), bytes.length + 1, join(dir, 'stored')), BlobMismatchError);
    await assert.rejects(writer.addFile!(digestOf(bytes), bytes.length, join(dir, 'absent')), /ENOENT/);
    await writer.abort();
    assert.deepEqual(await readdir(dir), ['stored']);
  } finally {
    await hasher.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('headers: a name past 100 bytes is split into prefix and name, or carried by a pax record; a size past 8 GiB too', () => {
  const blockName = (h: Buffer, at = 0) =>
    h
      .subarray(at, at + 100)
      .toString()
      .replace(/\0.*$/s, '');
  const short = tarHeader(`blobs/sha256/${'a'.repeat(64)}`, 10);
  assert.equal(short.length, 512);
  const split = tarHeader(`${'p'.repeat(120)}/${'n'.repeat(90)}`, 10);
  assert.equal(split.length, 512);
  assert.equal(blockName(split), 'n'.repeat(90));
  const pax = tarHeader(`blobs/sha512/${'b'.repeat(128)}`, 9 * 2 ** 30);
  assert.equal(pax[156], 'x'.charCodeAt(0));
  const records = pax.subarray(512, 1024).toString().replace(/\0+$/, '');
  assert.match(records, new RegExp(`^\\d+ path=blobs/sha512/b{128}\\n\\d+ size=${9 * 2 ** 30}\\n$`));
  for (const line of records.split(/(?<=\n)/)) assert.equal(Number(line.split(' ')[0]), Buffer.byteLength(line));
});
