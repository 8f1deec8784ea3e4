/** @module storage/touches.test — access times gathered in memory read as if written at once, and reach metadata.db before any read of them and at close. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MetadataStore } from './metadata.js';
import { StoreLayout } from './layout.js';
import { PendingTouches } from './touches.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

function withStore(fn: (store: MetadataStore, root: string, clock: { t: number }) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'berth-touches-'));
  const clock = { t: 100 };
  const store = new MetadataStore(root, () => clock.t);
  try {
    fn(store, root, clock);
  } finally {
    store.close();
    rmSync(root, { recursive: true, force: true });
  }
}

function storedAccess(root: string, digest: string): number | undefined {
  const db = new Database(new StoreLayout(root).metadataDb, { readonly: true });
  try {
    return (db.prepare('SELECT last_access AS t FROM blobs WHERE digest = ?').get(digest) as { t: number } | undefined)?.t;
  } finally {
    db.close();
  }
}

test('a touch is seen at once by blob() and by the eviction view, which writes it first', () => {
  withStore((store, root, clock) => {
    store.putBlob(A, 10);
    store.putBlob(B, 20);
    clock.t = 500;
    store.touchBlob(A);
    assert.equal(store.blob(A)?.lastAccess, 500);
    assert.equal(store.blob(B)?.lastAccess, 100);
    assert.equal(storedAccess(root, A), 100, 'not written per request');
    const view = store.evictionView();
    assert.equal(view.blobs.find((b) => b.digest === A)?.lastAccess, 500);
    assert.equal(storedAccess(root, A), 500);
  });
});

test('close writes the waiting access times; a later store of the blob wins over an earlier touch', () => {
  const root = mkdtempSync(join(tmpdir(), 'berth-touches-'));
  const clock = { t: 100 };
  try {
    const store = new MetadataStore(root, () => clock.t);
    store.putBlob(A, 10);
    store.putBlob(B, 20);
    clock.t = 300;
    store.touchBlob(A);
    store.touchBlob(B);
    clock.t = 400;
    store.putBlob(B, 20);
    store.close();
    assert.equal(storedAccess(root, A), 300);
    assert.equal(storedAccess(root, B), 400);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('many touches of the same blobs make one write of each', () => {
  const writes: Array<Array<[string, number]>> = [];
  const pending = new PendingTouches((times) => writes.push([...times]));
  for (let i = 0; i < 100; i++) pending.note(i % 2 ? A : B, i);
  pending.flush();
  pending.flush();
  assert.deepEqual(writes, [
    [
      [B, 98],
      [A, 99],
    ],
  ]);
});
