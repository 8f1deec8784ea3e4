/** @module storage/disk-space.test — the reserve: sized to the file system, released for a metadata write on a full disk, written again when space comes back; readiness and start-up on a full disk. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { DiskSpace } from './disk-space.js';

const MiB = 1024 * 1024;

/** A store whose file system reports what the test says (free and total), with a real reserve file. */
async function store(reserve: number, figures: { free: number; total: number }) {
  const root = await mkdtemp(join(tmpdir(), 'berth-space-'));
  await mkdir(join(root, 'tmp'));
  await mkdir(join(root, 'uploads'));
  const space = new DiskSpace({ root, reserve, logger: pino({ level: 'silent' }), retryMs: 60_000, space: async () => ({ ...figures }) });
  const reserveSize = () =>
    stat(join(root, 'reserve')).then(
      (s) => s.size,
      () => 0,
    );
  return { root, space, figures, reserveSize, done: () => (space.close(), rm(root, { recursive: true, force: true })) };
}

const full = (code = 'SQLITE_FULL') => Object.assign(new Error('database or disk is full'), { code });

test('the reserve is storage.reserve of real bytes, at most an eighth of the file system, and only where twice it is free', async () => {
  const big = await store(2 * MiB, { free: 100 * MiB, total: 100 * MiB });
  try {
    await big.space.init();
    assert.equal(big.space.reserveBytes, 2 * MiB);
    assert.equal(await big.reserveSize(), 2 * MiB);
    assert.deepEqual(await readdir(join(big.root, 'tmp')), [], 'no temp file stays');
  } finally {
    await big.done();
  }
  const small = await store(8 * MiB, { free: 8 * MiB, total: 8 * MiB });
  try {
    await small.space.init();
    assert.equal(small.space.reserveBytes, MiB, 'an eighth of an 8 MiB file system');
    assert.equal(await small.reserveSize(), MiB);
  } finally {
    await small.done();
  }
  const tight = await store(2 * MiB, { free: 3 * MiB, total: 100 * MiB });
  try {
    await tight.space.init();
    assert.equal(await tight.reserveSize(), 0, 'content would have less than the reserve left');
    tight.figures.free = 4 * MiB;
    assert.equal(await tight.space.restore(), true);
    assert.equal(await tight.reserveSize(), 2 * MiB);
  } finally {
    await tight.done();
  }
  const off = await store(0, { free: 100 * MiB, total: 100 * MiB });
  try {
    await off.space.init();
    assert.equal(await off.reserveSize(), 0, 'storage.reserve: 0 writes nothing');
    assert.equal(await off.space.release('test'), false);
  } finally {
    await off.done();
  }
});

test('a write that meets a full disk gets the reserve and runs once more; other errors are not retried', async () => {
  const s = await store(MiB, { free: 100 * MiB, total: 100 * MiB });
  try {
    await s.space.init();
    let calls = 0;
    // Fails as SQLite does until the reserve is gone.
    const write = async () => {
      calls++;
      if ((await s.reserveSize()) > 0) throw full();
      return 'written';
    };
    assert.equal(await s.space.retrying(write, 'test'), 'written');
    assert.equal(calls, 2);
    assert.equal(await s.reserveSize(), 0, 'released');
    await assert.rejects(
      s.space.retrying(() => Promise.reject(full('ENOSPC')), 'test'),
      (err: NodeJS.ErrnoException) => err.code === 'ENOSPC',
      'with nothing left to release the error stays',
    );
    let other = 0;
    await assert.rejects(
      s.space.retrying(() => {
        other++;
        throw Object.assign(new Error('constraint'), { code: 'SQLITE_CONSTRAINT' });
      }, 'test'),
    );
    assert.equal(other, 1);
    // Space came back: the reserve is written again.
    assert.equal(await s.space.restore(), true);
    assert.equal(await s.reserveSize(), MiB);
  } finally {
    await s.done();
  }
});

test('a guarded port: every method goes through the reserve, properties stay as they are', async () => {
  const s = await store(MiB, { free: 100 * MiB, total: 100 * MiB });
  try {
    await s.space.init();
    let tries = 0;
    const port = {
      name: 'rows',
      async insert(id: string): Promise<string> {
        tries++;
        if (tries === 1) throw full('SQLITE_IOERR_SHMSIZE');
        return `${this.name}:${id}`;
      },
    };
    const guarded = s.space.guard(port, 'push.db');
    assert.equal(guarded.name, 'rows');
    assert.equal(await guarded.insert('a'), 'rows:a');
    assert.equal(tries, 2);
    assert.equal(await s.reserveSize(), 0);
  } finally {
    await s.done();
  }
});

test('readiness: fine with the reserve held or as much free; else eviction is tried, then 503 naming cause and fix', async () => {
  const s = await store(MiB, { free: 100 * MiB, total: 100 * MiB });
  try {
    await s.space.init();
    let evictions = 0;
    s.space.onFull(async () => {
      evictions++;
    });
    s.figures.free = 0;
    assert.equal((await s.space.report()).ok, true, 'the reserve is there for metadata writes');
    await s.space.release('test');
    const low = await s.space.report();
    assert.equal(low.ok, false);
    assert.equal(low.reserveHeld, false);
    assert.match(low.message!, /less than the 1048576 metadata writes need/);
    assert.match(low.fix!, /storage\.maxsize/);
    assert.equal(evictions, 1, 'eviction was tried before saying so');
    // Eviction frees space: ready again, the reserve written back.
    s.space.onFull(async () => {
      s.figures.free = 10 * MiB;
    });
    const back = await s.space.report();
    assert.equal(back.ok, true);
    assert.equal(back.reserveHeld, true);
    assert.equal(await s.reserveSize(), MiB);
  } finally {
    await s.done();
  }
});

test('start-up on a full disk removes every partial upload; with room it leaves them', async () => {
  const s = await store(MiB, { free: 100 * MiB, total: 100 * MiB });
  try {
    await writeFile(join(s.root, 'uploads', 'a'), 'partial');
    await s.space.init();
    assert.equal(await s.space.freeAtStart(), 0);
    s.figures.free = 0;
    assert.equal(await s.space.freeAtStart(), 1);
    assert.deepEqual(await readdir(join(s.root, 'uploads')), []);
  } finally {
    await s.done();
  }
});

test('in the background (start-up): init resolves once the reserve is sized, and the reserve is written meanwhile', async () => {
  const s = await store(2 * MiB, { free: 100 * MiB, total: 100 * MiB });
  try {
    await s.space.init(true);
    assert.equal(s.space.reserveBytes, 2 * MiB, 'sized at once');
    // restore() shares the attempt init started: it resolves once the reserve is in place.
    assert.equal(await s.space.restore(), true);
    assert.equal(await s.reserveSize(), 2 * MiB);
  } finally {
    await s.done();
  }
});
