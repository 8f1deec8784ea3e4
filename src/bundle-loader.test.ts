/** @module bundle-loader.test — the loader runs CommonJS bundle files, writes V8's code cache once, offers it to the next start, and starts the same when the cache is missing, refused, cut short or cannot be written. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Bundle, WRAPPER_HEAD, WRAPPER_TAIL, defaultCacheDirs } from './bundle-loader.js';

const MAIN = [
  'const chunk = require("./chunk-A.cjs");',
  'const { join } = require("node:path");',
  'exports.twice = (n) => chunk.double(n);',
  'exports.url = () => new URL("../src/x.js", __berthUrl).href;',
  'exports.lazy = () => Promise.resolve().then(() => require("./chunk-B.cjs"));',
  'exports.outside = () => __berthImport("node:path");',
  'exports.joined = join("a", "b");',
].join('\n');

/** A file of the bundle as scripts/build-server.js writes it. */
const wrap = (code: string) => WRAPPER_HEAD + code + WRAPPER_TAIL;

/** A bundle of three files in a temp directory, and a second directory for the cache. */
function fakeBundle(): { root: string; dir: string; cache: string } {
  const root = mkdtempSync(path.join(tmpdir(), 'berth-bundle-loader-'));
  const dir = path.join(root, 'bundle');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'build-id'), 'aaaa\n');
  writeFileSync(path.join(dir, 'main.cjs'), wrap(`exports.answer = 42;\n${MAIN}`));
  writeFileSync(path.join(dir, 'chunk-A.cjs'), wrap('exports.double = (n) => n * 2;'));
  writeFileSync(path.join(dir, 'chunk-B.cjs'), wrap('exports.name = "b";'));
  return { root, dir, cache: path.join(root, 'cache') };
}

function open(dir: string, cacheDirs: string[], flags = '--max-semi-space-size=2'): Bundle {
  return new Bundle({ dir, cacheDirs, flags, importOutside: (s) => import(s) });
}

const cacheFiles = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('code-cache-'));

test('runs the files: require of another file and of a package, __berthUrl, a lazy file, __berthImport', async () => {
  const { root, dir, cache } = fakeBundle();
  try {
    const b = open(dir, [dir, cache]);
    const main = b.load('main.cjs') as Record<string, (...a: unknown[]) => unknown>;
    assert.equal(main['answer'], 42);
    assert.equal(main['twice']!(21), 42);
    assert.equal(main['joined'], path.join('a', 'b'));
    assert.equal(main['url']!(), new URL('../src/x.js', pathToFileURL(path.join(dir, 'main.cjs'))).href);
    assert.deepEqual(b.loaded(), ['main.cjs', 'chunk-A.cjs']);
    assert.equal(((await main['lazy']!()) as { name: string }).name, 'b');
    assert.equal(typeof ((await main['outside']!()) as { join: unknown }).join, 'function');
    assert.equal(b.load('main.cjs'), main, 'a file runs once');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the cache is written once, beside the bundle, and taken by the next start', () => {
  const { root, dir, cache } = fakeBundle();
  try {
    const first = open(dir, [dir, cache]);
    first.load('main.cjs');
    assert.equal(first.saveCodeCache(), true, 'nothing was cached: written');
    assert.equal(first.saveCodeCache(), false, 'written once');
    assert.equal(cacheFiles(dir).length, 1);
    const second = open(dir, [dir, cache]);
    second.load('main.cjs');
    assert.equal(second.saveCodeCache(), false, 'every file compiled from the cache: nothing to write');
    // Other flags: another file, since V8 refuses a cache made under other flags.
    const other = open(dir, [dir, cache], '');
    other.load('main.cjs');
    assert.equal(other.saveCodeCache(), true);
    assert.equal(cacheFiles(dir).length, 2);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a cache V8 refuses, or one cut short, is made again; the files run the same', () => {
  const { root, dir, cache } = fakeBundle();
  try {
    const first = open(dir, [dir]);
    first.load('main.cjs');
    first.saveCodeCache();
    // Same build id, other bytes of another length (as a hand-edited bundle): V8's own check refuses it.
    writeFileSync(path.join(dir, 'main.cjs'), wrap(`exports.answer = 43;;\n${MAIN}`));
    const refused = open(dir, [dir, cache]);
    assert.equal(refused.load('main.cjs')['answer'], 43);
    assert.equal(refused.saveCodeCache(), true, 'refused: written again');
    const [file] = cacheFiles(dir);
    truncateSync(path.join(dir, file!), Math.floor(statSync(path.join(dir, file!)).size / 2));
    const cut = open(dir, [dir, cache]);
    assert.equal(cut.load('main.cjs')['answer'], 43);
    assert.equal(cut.saveCodeCache(), true, 'cut short: written again');
    writeFileSync(path.join(dir, file!), 'not a cache');
    const garbage = open(dir, [dir, cache]);
    assert.equal(garbage.load('main.cjs')['answer'], 43);
    assert.equal(garbage.saveCodeCache(), true);
    // A header that parses but names impossible places (a damaged file): as if there were none.
    for (const entry of [
      [-8, 4],
      [0, -1],
      ['0', 4],
      [0.5, 1],
    ]) {
      const head = Buffer.from(JSON.stringify({ 'main.cjs': entry }));
      const length = Buffer.alloc(4);
      length.writeUInt32LE(head.length);
      writeFileSync(path.join(dir, file!), Buffer.concat([length, head, Buffer.alloc(64)]));
      const damaged = open(dir, [dir, cache]);
      assert.equal(damaged.load('main.cjs')['answer'], 43, `header entry ${JSON.stringify(entry)}`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a bundle directory that cannot be written: the cache goes to the next place; older builds are removed there', () => {
  const { root, dir } = fakeBundle();
  try {
    // A file where the first directory would be: no cache can be written there.
    const blocked = path.join(root, 'blocked');
    writeFileSync(blocked, '');
    const user = path.join(root, 'user-cache', 'berth');
    mkdirSync(user, { recursive: true });
    writeFileSync(path.join(user, 'code-cache-old-v1-x64-0.bin'), 'an older build');
    const b = open(dir, [path.join(blocked, 'sub'), user]);
    b.load('main.cjs');
    assert.equal(b.saveCodeCache(), true);
    assert.deepEqual(
      readdirSync(user).map((n) => n.slice(0, 16)),
      ['code-cache-aaaa-'],
    );
    const next = open(dir, [path.join(blocked, 'sub'), user]);
    next.load('main.cjs');
    assert.equal(next.saveCodeCache(), false, 'found in the second place');
    // Nowhere to write: no error.
    const nowhere = open(dir, [path.join(blocked, 'sub')], 'other flags');
    nowhere.load('main.cjs');
    assert.equal(nowhere.saveCodeCache(), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the cache places: beside the bundle, then XDG_CACHE_HOME or ~/.cache', () => {
  assert.deepEqual(defaultCacheDirs('/b', { XDG_CACHE_HOME: '/x' }, '/home/u'), ['/b', '/x/berth']);
  assert.deepEqual(defaultCacheDirs('/b', {}, '/home/u'), ['/b', '/home/u/.cache/berth']);
  assert.deepEqual(defaultCacheDirs('/b', {}, undefined), ['/b']);
});
