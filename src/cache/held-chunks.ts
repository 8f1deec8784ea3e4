/** @module cache/held-chunks — upstream chunks a fill holds in memory at their offsets in the blob (the latest bytes for readers keeping up, or a disk-full pass-through window), read back without a copy. */

/** A run of chunks, in order, starting at byte `start` of the blob. */
export class HeldChunks {
  private list: Buffer[] = [];
  /** Offset in the blob of the first chunk held. */
  start = 0;
  /** Bytes held. */
  bytes = 0;

  get empty(): boolean {
    return this.list.length === 0;
  }

  /** Upstream chunks are never reused by the client, so keeping references is safe. */
  push(chunk: Uint8Array): void {
    this.list.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.bytes += chunk.length;
  }

  /** Drops chunks from the front while `drop(firstChunkLength)` holds. */
  dropWhile(drop: (first: number) => boolean): void {
    while (this.list.length > 0 && drop(this.list[0]!.length)) {
      const dropped = this.list.shift()!;
      this.start += dropped.length;
      this.bytes -= dropped.length;
    }
  }

  /** Holds nothing, and the next chunk pushed is at `start`. */
  reset(start: number): void {
    this.list = [];
    this.start = start;
    this.bytes = 0;
  }

  /** Bytes from `pos` up to `limit` (exclusive) out of one held chunk; no copy. */
  read(pos: number, limit: number, digest: string): Buffer {
    let offset = this.start;
    for (const buf of this.list) {
      if (pos < offset + buf.length) {
        if (pos < offset) break;
        return buf.subarray(pos - offset, Math.min(buf.length, limit - offset));
      }
      offset += buf.length;
    }
    throw new Error(`bytes ${pos}.. of ${digest} are no longer held (disk full)`);
  }
}
