/**
 * @module storage/tar-index — the entries of a tar file found by reading only its 512-byte headers
 * (ustar, pax and GNU long names) with positioned reads: each entry's data is a region of the file,
 * skipped by seeking. Hand-written because the tar libraries on npm (tar-stream, tar) read archives
 * as a stream, passing every data byte through, and an import resumed after a kill must not read
 * the blobs it already stored.
 */
import type { FileHandle } from 'node:fs/promises';

const BLOCK = 512;
/** A pax or GNU long-name record is a few names; a bigger one is not an archive this reads. */
const MAX_META = 1024 * 1024;

export interface TarEntry {
  readonly name: string;
  /** '0' a regular file, '5' a directory, ...: the ustar type flag ('\0' and '7' read as '0'). */
  readonly type: string;
  /** Where its data starts in the file. */
  readonly offset: number;
  readonly size: number;
}

/** Thrown for an archive that is not a tar, or is cut short. */
export class TarFormatError extends Error {}

/** Every entry of the tar behind `fh` (of `fileSize` bytes) in archive order; pax and long-name records are applied, not yielded. */
export async function* tarEntries(fh: FileHandle, fileSize: number, where = 'the archive'): AsyncGenerator<TarEntry> {
  const header = Buffer.alloc(BLOCK);
  let pos = 0;
  let pax: Map<string, string> = new Map();
  let longName: string | undefined;
  while (pos + BLOCK <= fileSize) {
    await readExactly(fh, header, pos);
    if (header.every((b) => b === 0)) return;
    if (!checksumOk(header)) throw new TarFormatError(`${where} has a damaged tar header at byte ${pos}: it is not a tar archive, or it was corrupted`);
    const type = String.fromCharCode(header[156]!) || '0';
    const size = Number(pax.get('size') ?? numeric(header.subarray(124, 136), pos, where));
    const offset = pos + BLOCK;
    if (!Number.isSafeInteger(size) || size < 0 || offset + size > fileSize)
      throw new TarFormatError(`${where} is cut short: an entry at byte ${pos} needs ${size} bytes of data, the file ends first`);
    pos = offset + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (size > MAX_META) throw new TarFormatError(`${where} has a ${size}-byte tar extended header at byte ${offset - BLOCK}, more than ${MAX_META}`);
      const body = Buffer.alloc(size);
      await readExactly(fh, body, offset);
      // Global (g) records and link names (K) say nothing a layout's blobs need.
      if (type === 'x') pax = parsePax(body);
      if (type === 'L') longName = body.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    const ustar = header.subarray(257, 262).toString('latin1') === 'ustar';
    const prefix = ustar ? text(header.subarray(345, 500)) : '';
    const name = pax.get('path') ?? longName ?? (prefix ? `${prefix}/${text(header.subarray(0, 100))}` : text(header.subarray(0, 100)));
    pax = new Map();
    longName = undefined;
    // '\0' (pre-POSIX) and '7' (contiguous) are regular files too.
    yield { name, type: type === '\0' || type === '7' ? '0' : type, offset, size };
  }
  // No end-of-archive blocks: tar writers that stop at the last entry are common, a cut header is not.
  if (pos < fileSize && pos + BLOCK > fileSize) throw new TarFormatError(`${where} is cut short: it ends inside a tar header at byte ${pos}`);
}

/** Fills `into` from `at`; the file ending first is an archive cut short. */
export async function readExactly(fh: FileHandle, into: Buffer, at: number): Promise<void> {
  for (let got = 0; got < into.length;) {
    const { bytesRead } = await fh.read(into, got, into.length - got, at + got);
    if (bytesRead === 0) throw new TarFormatError(`the archive ended at byte ${at + got} while ${into.length} bytes from ${at} were read`);
    got += bytesRead;
  }
}

function text(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

/** An octal field, or GNU base-256 (high bit set) for sizes past 8 GiB. */
function numeric(field: Buffer, pos: number, where: string): number {
  if (field[0]! & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const digits = text(field).trim();
  if (!/^[0-7]*$/.test(digits)) throw new TarFormatError(`${where} has a tar header at byte ${pos} whose size is not a number`);
  return digits === '' ? 0 : parseInt(digits, 8);
}

function checksumOk(header: Buffer): boolean {
  const stored = text(header.subarray(148, 156)).trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum === parseInt(stored, 8);
}

/** Records of the form `<length> <key>=<value>\n`. */
function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(0x20, at);
    const length = space < 0 ? NaN : Number(body.subarray(at, space).toString('latin1'));
    if (!Number.isSafeInteger(length) || length <= 0 || at + length > body.length) break;
    const record = body.subarray(space + 1, at + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return out;
}
