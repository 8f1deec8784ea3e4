/** @module e2e/startup.test — start-up cost: `berth version` and `--help` load commander and nothing heavy, `serve` runs the bundle (from V8's code cache once one start has written it) and in one process loads no other command's or mode's code, listens before it reconciles a large store and serves by the files meanwhile; times printed. */
/** @serial prints start-up times, which another file's load would skew. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { BERTH_BIN, startBerth } from '../fixtures/berth.js';
import { freePort, makeTempDir, removeDir, sleep, waitFor } from '../fixtures/proc.js';
import { seedStore } from '../fixtures/store-seed.js';
import { MetadataStore } from '../../src/storage/metadata.js';

const DIST_SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
const DIST_BUNDLE = path.resolve(DIST_SRC, '../bundle');
/** What each file of the bundle bin/berth.js runs holds (scripts/build-server.js): module URLs, berth's own and packages'. */
const BUNDLE: Record<string, string[]> = JSON.parse(readFileSync(path.join(DIST_BUNDLE, 'meta.json'), 'utf8')) as Record<string, string[]>;

/** A resolve hook that writes every module URL the program loads (ESM graph, packages included) to a file. */
const HOOKS = `
import { appendFileSync } from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(out, r.url + '\\n');
  return r;
}
`;
const REGISTER = `
import { register } from 'node:module';
register('./hooks.mjs', import.meta.url, { data: { out: process.env.BERTH_TEST_LOADED } });
`;
/**
 * The bundle's files are compiled by src/bundle-loader.ts through vm.Script, and the packages it
 * leaves outside are require()d: neither passes the resolve hook. This preload writes the file
 * each vm.Script is made for, and each file require() resolves, to the same list, and whether V8
 * took the code cache offered for a file.
 */
const PRELOAD = `
const { appendFileSync } = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');
const { pathToFileURL } = require('node:url');
const out = process.env.BERTH_TEST_LOADED;
const log = (file) => { if (typeof file === 'string' && path.isAbsolute(file)) appendFileSync(out, pathToFileURL(file).href + '\\n'); };
const Script = vm.Script;
vm.Script = class extends Script {
  constructor(code, options) {
    log(options && options.filename);
    super(code, options);
    if (options && options.cachedData) appendFileSync(out, 'code-cache ' + (this.cachedDataRejected ? 'refused ' : 'taken ') + path.basename(options.filename) + '\\n');
  }
};
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (...args) { const file = resolveFilename.apply(this, args); log(file); return file; };
const http = require('node:http');
const emit = http.Server.prototype.emit;
let requested = false;
http.Server.prototype.emit = function (event, ...args) {
  if (event === 'request' && !requested) { requested = true; appendFileSync(out, 'first-request\\n'); }
  return emit.call(this, event, ...args);
};
`;

let dir: string;
before(async () => {
  dir = await makeTempDir('berth-startup-');
  await writeFile(path.join(dir, 'hooks.mjs'), HOOKS);
  await writeFile(path.join(dir, 'register.mjs'), REGISTER);
  await writeFile(path.join(dir, 'preload.cjs'), PRELOAD);
});
after(async () => {
  await removeDir(dir);
});

interface Loaded {
  /** Files of the bundle (dist/bundle) loaded. */
  bundle: Set<string>;
  /** npm packages, by name. */
  packages: Set<string>;
  /** berth's own modules, relative to dist/src. */
  modules: Set<string>;
  /** Files of the bundle compiled from the code cache, and those whose cache V8 refused. */
  cacheTaken: Set<string>;
  cacheRefused: Set<string>;
  /** npm packages loaded before the first request came (all of them when none came). */
  packagesBeforeRequest: Set<string>;
}

/** A loaded file of the bundle stands for every module in it: what loading it compiled and ran. */
function parseLoaded(text: string): Loaded {
  const bundle = new Set<string>();
  const packages = new Set<string>();
  const modules = new Set<string>();
  const urls = text.split('\n').filter((u) => u.startsWith('file:'));
  const held: string[] = [];
  for (const url of urls) {
    const file = fileURLToPath(url);
    if (!file.startsWith(`${DIST_BUNDLE}/`)) continue;
    const name = path.relative(DIST_BUNDLE, file);
    bundle.add(name);
    held.push(...(BUNDLE[name] ?? []));
  }
  for (const url of [...urls, ...held]) {
    const file = fileURLToPath(url);
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1];
    if (pkg) packages.add(pkg);
    else if (file.startsWith(`${DIST_SRC}/`)) modules.add(path.relative(DIST_SRC, file));
  }
  const cache = (state: string) => new Set(text.split('\n').flatMap((l) => (l.startsWith(`code-cache ${state} `) ? [l.split(' ')[2]!] : [])));
  const before = text.split('\nfirst-request\n')[0]!;
  const packagesBeforeRequest = new Set(before.split('\n').flatMap((l) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(l)?.[1] ?? []));
  return { bundle, packages, modules, cacheTaken: cache('taken'), cacheRefused: cache('refused'), packagesBeforeRequest };
}

let runs = 0;
/** Node flags that make a run write what it loads to $BERTH_TEST_LOADED. */
const watch = () => ['--import', path.join(dir, 'register.mjs'), '--require', path.join(dir, 'preload.cjs')];
function loadedBy(args: string[]): Loaded & { status: number | null } {
  const out = path.join(dir, `loaded-${runs++}.txt`);
  const r = spawnSync(process.execPath, [...watch(), BERTH_BIN, ...args], {
    encoding: 'utf8',
    cwd: dir,
    env: { ...process.env, BERTH_TEST_LOADED: out },
  });
  const text = spawnSync('cat', [out], { encoding: 'utf8' }).stdout;
  return { ...parseLoaded(text), status: r.status };
}

/** What `version` and `--help` may load of berth's own: the bundle's loader, main, the help's defaults, the error types, and `queue`'s registration. */
const LIGHT = new Set(['bundle-loader.js', 'main.js', 'cli/help-defaults.js', 'oci/errors.js', 'cli/queue.js']);

test('berth version and berth --help load commander and none of the command modules', () => {
  for (const args of [['version'], ['--help'], ['queue', '--help']]) {
    const { bundle, packages, modules, status } = loadedBy(args);
    assert.equal(status, 0, args.join(' '));
    assert.ok(bundle.has('main.cjs'), `${args.join(' ')} runs the bundle`);
    assert.deepEqual([...packages], ['commander'], `${args.join(' ')} loads only commander, not ${[...packages].join(', ')}`);
    const extra = [...modules].filter((m) => !LIGHT.has(m));
    assert.deepEqual(extra, [], `${args.join(' ')} loads no command's code`);
  }
  // The hook does see packages: config check loads what it needs.
  const check = loadedBy(['config', 'check', path.join(dir, 'absent.yml')]);
  assert.ok(check.packages.has('zod') && check.packages.has('yaml'), [...check.packages].join(', '));
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeRuns(args: string[], n: number): number {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const r = spawnSync(process.execPath, args, { cwd: dir, stdio: 'ignore' });
    times.push(performance.now() - started);
    assert.equal(r.status, 0, args.join(' '));
  }
  return median(times);
}

test('the bundle holds no chunk that is a CommonJS package alone (its named exports would be lost when imported lazily)', async () => {
  const lone: string[] = [];
  for (const file of Object.keys(BUNDLE)) {
    const text = await readFile(path.join(DIST_BUNDLE, file), 'utf8');
    // esbuild's `export default require_x();`, made CommonJS by scripts/build-server.js.
    if (/^var \w+_default = require_\w+\(\);$/m.test(text)) lone.push(file);
  }
  assert.deepEqual(lone, [], 'scripts/build-server.js leaves lazily imported packages outside the bundle');
});

test('berth config check runs from the bundle with the named exports of what it imports lazily (yaml)', async () => {
  const dir = await makeTempDir('berth-e2e-startup-lazy-');
  try {
    const file = path.join(dir, 'config.yml');
    await writeFile(file, `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'store')}\nproxy:\n  remoteurl: http://127.0.0.1:1\n`);
    const check = spawnSync(process.execPath, [BERTH_BIN, 'config', 'check', file], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /remoteurl: http:\/\/127\.0\.0\.1:1/);
  } finally {
    await removeDir(dir);
  }
});

test('berth version and --help cost little more than starting node itself (measured)', () => {
  const bare = timeRuns(['-e', '0'], 7);
  const version = timeRuns([BERTH_BIN, 'version'], 7);
  const help = timeRuns([BERTH_BIN, '--help'], 7);
  process.stdout.write(
    `# start-up, median of 7: node -e 0 ${Math.round(bare)} ms, berth version ${Math.round(version)} ms, berth --help ${Math.round(help)} ms\n`,
  );
  // Generous: a shared machine varies; loading the whole program took seconds more.
  assert.ok(version - bare < 600, `berth version ${Math.round(version)} ms against node's own ${Math.round(bare)} ms`);
  assert.ok(help - bare < 600, `berth --help ${Math.round(help)} ms against node's own ${Math.round(bare)} ms`);
});

/** Spawn to the first 200 on /v2/ with an empty store; also which packages the serving process loaded. It is stopped `holdMs` after it answers. */
async function serveReady(upstream: string, holdMs = 0): Promise<{ ms: number; loaded: Loaded }> {
  const port = await freePort();
  const root = await makeTempDir('berth-startup-root-');
  const out = path.join(dir, `loaded-${runs++}.txt`);
  const started = performance.now();
  const child = spawn(process.execPath, [...watch(), BERTH_BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--root', root, '--upstream', upstream], {
    cwd: dir,
    stdio: 'ignore',
    env: { ...process.env, BERTH_TEST_LOADED: out, REGISTRY_HTTP_WORKERS: '1' },
  });
  try {
    for (;;) {
      const status = await request(`http://127.0.0.1:${port}/v2/`).then(
        async (r) => (await r.body.dump(), r.statusCode),
        () => 0,
      );
      if (status === 200) break;
      assert.ok(performance.now() - started < 60_000, 'berth serve never answered');
      assert.equal(child.exitCode, null, 'berth serve exited');
      await sleep(10);
    }
    const ms = performance.now() - started;
    await sleep(holdMs);
    return { ms, loaded: parseLoaded(await readFile(out, 'utf8')) };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    await removeDir(root);
  }
}

test('berth serve with an empty store: ready quickly (measured), without the other commands’ or modes’ code', async () => {
  const closed = await freePort();
  const plain = await serveReady('none');
  const unreachable = await serveReady(`http://127.0.0.1:${closed}`);
  process.stdout.write(
    `# serve, spawn to first 200 on /v2/: ${Math.round(plain.ms)} ms (upstream none), ${Math.round(unreachable.ms)} ms (upstream unreachable)\n`,
  );
  for (const { loaded } of [plain, unreachable]) {
    // Certificates (node-forge), warm-up progress bars, Redis (no cluster configured), bcrypt (no htpasswd).
    for (const heavy of ['node-forge', 'cli-progress', 'ioredis', 'bcryptjs']) assert.ok(!loaded.packages.has(heavy), `serve loaded ${heavy}`);
    for (const m of ['cli/cert.js', 'cli/certs.js', 'cli/warm.js', 'cli/store.js', 'cli/doctor.js', 'cli/node-config.js'])
      assert.ok(!loaded.modules.has(m), `serve loaded ${m}`);
    // One process alone: nothing of the fleet, a site's replicas or the worker group; no token signing (jose).
    const otherModes = [...loaded.modules].filter((m) => /^(fleet|cluster)\/|^workers\/(primary|channel|fill-table|worker-fills)\.js$/.test(m));
    assert.deepEqual(otherModes, [], 'serve in one process loads no other mode');
    assert.ok(!loaded.packages.has('jose'), 'serve without auth.token loaded jose');
    assert.ok(loaded.modules.has('assembly/single.js'), 'the hook saw the serving modules');
    assert.ok(loaded.bundle.has('main.cjs') && loaded.bundle.size < 60, `serve runs the bundle, ${loaded.bundle.size} files of it`);
    // koffi (sendfile(2)) is bound after the first answer, which does not need it.
    assert.ok(!loaded.packagesBeforeRequest.has('koffi'), 'serve loaded koffi before its first request');
  }
  // Generous: the goal (under 1 s) is for a quiet machine; an unreachable upstream must not hold listening up.
  assert.ok(plain.ms < 10_000 && unreachable.ms < 10_000, `${Math.round(plain.ms)} / ${Math.round(unreachable.ms)} ms`);
});

test('serve writes V8’s code cache of the bundle after it listens, and the next start compiles every file from it', async () => {
  const buildId = readFileSync(path.join(DIST_BUNDLE, 'build-id'), 'utf8').trim();
  const caches = () => readdirSync(DIST_BUNDLE).filter((n) => n.startsWith(`code-cache-${buildId}-`));
  // The cache is written once the first requests are over: a quiet second after the last (util/after-quiet).
  const first = await serveReady('none', 4000);
  assert.ok(caches().length > 0, `no code cache in ${DIST_BUNDLE}`);
  const second = await serveReady('none');
  assert.deepEqual([...second.loaded.cacheRefused], [], 'V8 took every cache offered');
  const compiled = [...second.loaded.bundle].filter((f) => !second.loaded.cacheTaken.has(f));
  assert.deepEqual(compiled, [], `compiled without a cache (the first start loaded ${first.loaded.bundle.size} files)`);
  process.stdout.write(`# serve, spawn to first 200 on /v2/: ${Math.round(first.ms)} ms compiling, ${Math.round(second.ms)} ms from the code cache\n`);
});

test('serve with a store of many blobs listens before it reconciles the index, and serves by the files meanwhile', async () => {
  const root = await makeTempDir('berth-startup-store-');
  const repo = 'seeded/app';
  const seeded = await seedStore(root, { count: 5000, unrecorded: 3, missing: 3, repository: repo });
  // A partial write of an earlier run: removed before berth listens, never served.
  await mkdir(path.join(root, 'tmp'), { recursive: true });
  await writeFile(path.join(root, 'tmp', 'partial'), 'half a blob');
  const berth = await startBerth({ root, config: { version: 0.1 } });
  try {
    const get = async (digest: string) => {
      const r = await request(`${berth.url}/v2/${repo}/blobs/${digest}`);
      return { status: r.statusCode, body: Buffer.from(await r.body.arrayBuffer()) };
    };
    // Rows whose file is gone serve nothing, before the reconciliation and after; files serve whether or not they have a row yet.
    const check = async () => {
      for (const d of seeded.missing) assert.equal((await get(d)).status, 404, `row without a file: ${d}`);
      for (const d of [...seeded.unrecorded, ...seeded.stored.slice(0, 3), ...seeded.stored.slice(-3)]) {
        const r = await get(d);
        assert.equal(r.status, 200, d);
        assert.deepEqual(r.body, seeded.content(d), d);
      }
    };
    await check();
    const reconciled = (l: Record<string, unknown>) => l['msg'] === 'metadata reconciled with the files on disk';
    await waitFor(async () => (await berth.logLines()).some(reconciled), 60_000, { what: 'the reconciliation' });
    await check();
    const lines = await berth.logLines();
    const at = (p: (l: Record<string, unknown>) => boolean) => lines.findIndex(p);
    const listening = at((l) => l['msg'] === 'berth listening');
    const removed = at((l) => l['msg'] === 'removed partial files left by an earlier stop');
    assert.ok(removed >= 0 && removed < listening, 'partial files go before berth listens');
    assert.ok(listening >= 0 && at(reconciled) > listening, 'berth listens first and reconciles after');
    assert.equal(lines[at(reconciled)]!['forgotten'], 3);
  } finally {
    await berth.stop();
  }
  // The rows agree with the files: the files without a row were adopted (by serving or by the reconciliation), the rows without a file forgotten.
  const index = new MetadataStore(root, Date.now);
  try {
    for (const d of seeded.unrecorded) assert.ok(index.blob(d), `adopted ${d}`);
    for (const d of seeded.missing) assert.equal(index.blob(d), undefined, `forgot ${d}`);
    assert.ok(index.blob(seeded.stored[0]!));
  } finally {
    index.close();
  }
  await removeDir(root);
});
