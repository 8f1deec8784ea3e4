/** @module storage/send.test — ranges of a file written to a writable: exact bytes, backpressure, early close. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { BufferPool, SEND_CHUNK, sendRange } from './send.js';

async function withFile(data: Buffer, fn: (fd: number) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-send-'));
  const file = join(dir, 'blob');
  await writeFile(file, data);
  const fh = await open(file, 'r');
  try {
    await fn(fh.fd);
  } finally {
    await fh.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Collects copies of what it is given (the sender reuses its buffers), slowly when asked. */
function sink(delayMs = 0): Writable & { got: Buffer[] } {
  const got: Buffer[] = [];
  const w = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, cb) {
      got.push(Buffer.from(chunk));
      if (delayMs) setTimeout(cb, delayMs);
      else cb();
    },
  });
  return Object.assign(w, { got });
}

test('sends the exact bytes of whole files and ranges, across buffer reuse within and between responses', async () => {
  const data = randomBytes(SEND_CHUNK * 5 + 123);
  const pool = new BufferPool();
  await withFile(data, async (fd) => {
    for (const [start, end] of [
      [0, data.length - 1],
      [1, 1],
      [SEND_CHUNK - 1, SEND_CHUNK * 3 + 7],
      [data.length - 10, data.length - 1],
    ] as const) {
      const out = sink(1);
      let counted = 0;
      await sendRange(fd, start, end, out, (n) => (counted += n), pool);
      const body = Buffer.concat(out.got);
      assert.equal(body.length, end - start + 1);
      assert.ok(body.equals(data.subarray(start, end + 1)), `bytes ${start}-${end}`);
      assert.equal(counted, body.length);
      assert.ok(out.writableFinished);
    }
  });
});

test('rejects when the writable is destroyed midway, and stops reading', async () => {
  const data = randomBytes(SEND_CHUNK * 8);
  await withFile(data, async (fd) => {
    const out = sink(5);
    let counted = 0;
    const sending = sendRange(fd, 0, data.length - 1, out, (n) => {
      counted += n;
      if (counted >= SEND_CHUNK * 2) out.destroy();
    });
    await assert.rejects(sending, { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    assert.ok(counted < data.length);
  });
});

test('a range past the end of the file fails instead of hanging', async () => {
  await withFile(randomBytes(1000), async (fd) => {
    await assert.rejects(
      sendRange(fd, 0, 1999, sink(), () => undefined),
      /file ended at byte 1000/,
    );
  });
});
