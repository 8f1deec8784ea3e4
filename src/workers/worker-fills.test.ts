/** @module workers/worker-fills.test — a follower reads the filler's temp file as it grows, ends at the size, and stops short (to take over) when the filler dies. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { FillRouter } from '../ports/fills.js';
import { WorkerChannel, type IpcPort } from './channel.js';
import { FillTable, type FillNotice } from './fill-table.js';
import { WorkerFills, WorkerFillLost } from './worker-fills.js';
import type { ToPrimary } from './worker-protocol.js';

const D = 'sha256:' + 'a'.repeat(64);

/** The primary's fill handling in miniature: two workers' channels, delivered asynchronously as IPC is. */
function group() {
  const table = new FillTable();
  const listeners = new Map<number, Set<(m: unknown) => void>>();
  const deliver = (worker: number, m: unknown) => setImmediate(() => listeners.get(worker)?.forEach((l) => l(m)));
  const notify = (ns: FillNotice[]) => ns.forEach((n) => deliver(n.worker, { berth: 'fill', kind: n.kind, digest: n.digest, size: n.size }));
  const port = (worker: number): IpcPort => {
    listeners.set(worker, new Set());
    return {
      send: (raw) => {
        const m = raw as ToPrimary;
        if (m.berth === 'call' && m.op === 'claim') deliver(worker, { berth: 'reply', id: m.id, value: table.claim(worker, m.digest, m.tempPath) });
        if (m.berth === 'note' && m.op === 'ready') notify(table.ready(worker, m.digest, m.size));
        if (m.berth === 'note' && m.op === 'finish') notify(table.finish(worker, m.digest));
      },
      on: (_e, l) => listeners.get(worker)!.add(l),
      off: (_e, l) => listeners.get(worker)!.delete(l),
    };
  };
  const fills = (worker: number, finalPath = '/nonexistent') =>
    new WorkerFills({ channel: new WorkerChannel(port(worker), worker, 2), finalPath: () => finalPath, logger: pino({ level: 'silent' }) });
  return { table, notify, fills };
}

function request(tempPath: string, opts: { offset?: number; size?: number; upstream?: () => AsyncIterable<Uint8Array> } = {}) {
  const marked: Array<number | undefined> = [];
  const req: Parameters<FillRouter['open']>[0] = {
    target: { key: 'default', repository: 'r', upstream: undefined },
    digest: D,
    offset: opts.offset ?? 0,
    fromPeer: false,
    upstream: async () => (opts.upstream ?? async function* () {})(),
    markReady: (s) => marked.push(s),
    tempPath,
    size: () => opts.size,
    visible: async () => undefined,
  };
  return { req, marked };
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

test('one worker fills; the other follows its temp file as it grows and ends at the announced size', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-wf-'));
  try {
    const g = group();
    const fillerFile = join(dir, 'filler');
    await writeFile(fillerFile, '');
    const filler = g.fills(1);
    let upstreamCalls = 0;
    await filler.open(
      request(fillerFile, {
        size: 12,
        upstream: () => {
          upstreamCalls++;
          return (async function* () {})();
        },
      }).req,
    );
    assert.equal(upstreamCalls, 1);
    const follower = g.fills(2);
    const { req, marked } = request(join(dir, 'follower'));
    const reading = follower.open(req).then(collect);
    await appendFile(fillerFile, 'hello ');
    await new Promise((r) => setTimeout(r, 30));
    await appendFile(fillerFile, 'world!');
    assert.equal((await reading).toString(), 'hello world!');
    assert.deepEqual(marked, [12], 'the follower learned the size the filler announced');
    assert.equal(follower.following, 1, 'a fill that follows is not counted as an upstream transfer of this worker');
    follower.finished(D);
    assert.equal(follower.following, 0);
    filler.finished(D);
    assert.equal(g.table.filling(D), false, "the filler's finish ends the claim");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the filler dies: the follower gets what was written, then WorkerFillLost; its next claim makes it the filler', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-wf-'));
  try {
    const g = group();
    const fillerFile = join(dir, 'filler');
    await writeFile(fillerFile, 'partial');
    await g.fills(1).open(request(fillerFile, { size: 100 }).req);
    const follower = g.fills(2);
    const got: Buffer[] = [];
    const reading = (async () => {
      for await (const c of await follower.open(request(join(dir, 'follower')).req)) got.push(Buffer.from(c));
    })();
    await new Promise((r) => setTimeout(r, 30));
    g.notify(g.table.gone(1).notices);
    await assert.rejects(reading, WorkerFillLost);
    assert.equal(Buffer.concat(got).toString(), 'partial');
    assert.ok(follower.retriable(new WorkerFillLost(D, 7)));
    let resumedAt: number | undefined;
    const { req } = request(join(dir, 'follower'), { offset: 7, size: 100 });
    await follower.open({
      ...req,
      upstream: async (o) => {
        resumedAt = o;
        return (async function* () {})();
      },
    });
    assert.equal(resumedAt, 7, 'the takeover resumes upstream from the bytes it has');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a claim made after another worker committed the blob copies the committed file, never the upstream', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-wf-'));
  try {
    const g = group();
    const committed = join(dir, 'blob');
    await writeFile(committed, 'committed bytes');
    let upstreamCalls = 0;
    const { req, marked } = request(join(dir, 'temp'), {
      upstream: () => {
        upstreamCalls++;
        return (async function* () {})();
      },
    });
    const fills = g.fills(1, committed);
    assert.equal((await collect(await fills.open(req))).toString(), 'committed bytes');
    assert.equal(upstreamCalls, 0);
    assert.deepEqual(marked, [15]);
    fills.finished(D);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('taking over with a file shared with the dead filler: its bytes are checked from disk, the upstream asked only for the rest', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-wf-'));
  try {
    const g = group();
    const shared = join(dir, 'shared');
    // The dead filler wrote 11 bytes into the file this fill shares; this fill had checked 5 of them.
    await writeFile(shared, 'hello world');
    const events: string[] = [];
    let from: number | undefined;
    const { req } = request(shared, { offset: 5 });
    const body = await g.fills(1).open({
      ...req,
      shared: () => true,
      own: () => events.push('own'),
      upstream: async (o) => {
        from = o;
        events.push('upstream');
        return (async function* () {
          yield Buffer.from('!!');
        })();
      },
    });
    const parts: string[] = [];
    for await (const c of body) parts.push(`${events.includes('own') ? 'written' : 'checked'}:${Buffer.from(c).toString()}`);
    assert.deepEqual(parts, ['checked: world', 'written:!!'], 'the bytes on disk only checked, the rest written');
    assert.equal(from, 11, 'the upstream resumes after what the file holds');
    assert.deepEqual(events, ['own', 'upstream']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a fill sharing a file that is not the committed one writes the committed bytes itself', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-wf-'));
  try {
    const g = group();
    const committed = join(dir, 'blob');
    await writeFile(committed, 'committed bytes');
    let owned = false;
    const { req } = request(join(dir, 'temp'));
    const body = await g.fills(1, committed).open({ ...req, shared: () => !owned, own: () => (owned = true) });
    assert.ok(owned, 'own() before the first byte: the shared file may be a partial one');
    assert.equal((await collect(body)).toString(), 'committed bytes');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
