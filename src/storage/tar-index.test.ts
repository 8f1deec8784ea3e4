/** @module storage/tar-index.test — a tar's entries found from its headers alone (tar-stream's, GNU tar's and pax archives), each data region holding the entry's bytes; damaged and cut-short archives refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import tar from 'tar-stream';
import { TarFormatError, tarEntries, type TarEntry } from './tar-index.js';

const exec = promisify(execFile);
const longDir = `blobs/sha512`;
const longName = `${longDir}/${'ab'.repeat(64)}`;
const files: Array<[string, Buffer]> = [
  ['oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}')],
  ['blobs/sha256/empty', Buffer.alloc(0)],
  ['blobs/sha256/block', Buffer.alloc(512, 1)],
  ['blobs/sha256/odd', Buffer.alloc(70_001, 2)],
  [longName, Buffer.from('long name')],
  [`${'d'.repeat(120)}/${'e'.repeat(120)}`, Buffer.from('longer than a ustar prefix')],
];

async function entriesOf(file: string): Promise<Array<TarEntry & { body: string }>> {
  const fh = await open(file, 'r');
  try {
    const out: Array<TarEntry & { body: string }> = [];
    for await (const e of tarEntries(fh, (await fh.stat()).size)) {
      const body = Buffer.alloc(e.size);
      if (e.size > 0) await fh.read(body, 0, e.size, e.offset);
      out.push({ ...e, body: body.toString('latin1') });
    }
    return out;
  } finally {
    await fh.close();
  }
}

function expectFiles(found: Array<TarEntry & { body: string }>): void {
  const regular = found.filter((e) => e.type === '0');
  assert.deepEqual(
    regular.map((e) => [e.name.replace(/^\.\//, ''), e.body]),
    files.map(([n, b]) => [n, b.toString('latin1')]),
  );
}

test("tar-stream's archive: every entry named, its data at its offset; directories typed", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-tar-index-'));
  try {
    const pack = tar.pack();
    const file = join(dir, 'a.tar');
    const done = pipeline(pack, createWriteStream(file));
    pack.entry({ name: 'blobs/', type: 'directory' });
    for (const [name, body] of files) pack.entry({ name, size: body.length }, body);
    pack.finalize();
    await done;
    const found = await entriesOf(file);
    assert.equal(found[0]!.type, '5');
    expectFiles(found);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

for (const format of ['gnu', 'pax', 'ustar'] as const) {
  test(`GNU tar's ${format} archive reads the same; a damaged header and a cut-short archive are refused`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-tar-index-'));
    try {
      const src = join(dir, 'src');
      // ustar has no room for the long names.
      const names = format === 'ustar' ? files.slice(0, 4) : files;
      for (const [name, body] of names) {
        await mkdir(join(src, name, '..'), { recursive: true });
        await writeFile(join(src, name), body);
      }
      const file = join(dir, 'a.tar');
      await exec('tar', [`--format=${format}`, '--no-recursion', '-cf', file, '-C', src, ...names.map(([n]) => n)]);
      const found = await entriesOf(file);
      assert.deepEqual(
        found.filter((e) => e.type === '0').map((e) => [e.name, e.body]),
        names.map(([n, b]) => [n, b.toString('latin1')]),
      );
      const odd = found.find((e) => e.name === 'blobs/sha256/odd')!;
      await truncate(file, odd.offset + 100);
      await assert.rejects(entriesOf(file), (err) => err instanceof TarFormatError && /cut short/.test(err.message));
      const fh = await open(file, 'r+');
      await fh.write(Buffer.from('zz'), 0, 2, 10);
      await fh.close();
      await assert.rejects(entriesOf(file), (err) => err instanceof TarFormatError && /damaged tar header at byte 0/.test(err.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
