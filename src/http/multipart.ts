/** @module http/multipart — the body of a `206 multipart/byteranges` answer (RFC 9110 §14.6): part heads, exact length, parts streamed one after another. */
import { randomBytes } from 'node:crypto';
import type { ByteRange } from './range.js';

export interface MultipartPart {
  readonly range: ByteRange;
  /** The delimiter and the part's header fields, up to and including the empty line. */
  readonly head: Buffer;
}

export interface MultipartPlan {
  /** `multipart/byteranges; boundary=…` */
  readonly contentType: string;
  /** The exact body length: Content-Length is sent, so clients need no chunked decoding. */
  readonly length: number;
  readonly parts: readonly MultipartPart[];
  /** The closing delimiter. */
  readonly tail: Buffer;
}

/** Bytes of one range, as soon as its source has them. */
export type ReadRange = (range: ByteRange) => AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>;

/**
 * Lays out the body of `ranges` (sorted, not overlapping) of a blob of `size` bytes. The boundary
 * is random so that no blob's bytes can end a part early (a fixed one could be planted in a layer).
 */
export function planMultipart(ranges: readonly ByteRange[], size: number, partType: string, boundary = randomBytes(16).toString('hex')): MultipartPlan {
  const parts = ranges.map((range, i) => ({
    range,
    head: Buffer.from(
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${partType}\r\nContent-Range: bytes ${range.start}-${range.end}/${size}\r\n\r\n`,
      'latin1',
    ),
  }));
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  const length = parts.reduce((n, p) => n + p.head.length + p.range.end - p.range.start + 1, tail.length);
  return { contentType: `multipart/byteranges; boundary=${boundary}`, length, parts, tail };
}

/**
 * The body: each part's head, then its bytes from `read` (one part's source open at a time, so
 * memory stays flat whatever the sizes), then the closing delimiter. `onBytes` counts blob bytes
 * only. A source that ends short of its range throws: the response must be cut, not padded.
 */
export async function* multipartBody(plan: MultipartPlan, read: ReadRange, onBytes: (n: number) => void): AsyncGenerator<Uint8Array> {
  for (const part of plan.parts) {
    yield part.head;
    const want = part.range.end - part.range.start + 1;
    let got = 0;
    for await (const chunk of await read(part.range)) {
      got += chunk.length;
      onBytes(chunk.length);
      yield chunk;
    }
    if (got !== want) throw new Error(`part ${part.range.start}-${part.range.end} ended after ${got} of ${want} bytes`);
  }
  yield plan.tail;
}
