/** @module bundle-loader — runs the bundle's CommonJS files (dist/bundle) through vm.Script with V8's code cache, made after a start and checked by V8 on the next. */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { pathToFileURL } from 'node:url';

/*
 * Compiling the bundle's source was about a fifth of berth's CPU to ready, and Node 20 has no
 * compile cache for ES modules (docs/performance.md). scripts/build-server.js therefore turns
 * each file of the bundle into a CommonJS script, and this loader compiles each with the code V8
 * made for it on an earlier start. V8 refuses a cache made by another V8, under other flags or
 * for a source of another length; the file's name holds the build's id (a hash of the bundle),
 * the Node version, the architecture and this process's Node flags, so a cache is only offered
 * for the very bytes it was made from. A refused or missing cache costs nothing but the compile
 * it would have saved, and is made again once the process has started.
 */

/**
 * What a file of the bundle is given, as Node gives a CommonJS module (and what build-server.js
 * puts in place of import.meta.url and of import()). build-server.js writes each file inside this
 * function, so the source read is compiled as it is, without a copy made to wrap it.
 */
export const WRAPPER_HEAD = '(function (exports, require, module, __filename, __dirname, __berthUrl, __berthImport) {';
export const WRAPPER_TAIL = '\n})';

export interface BundleOptions {
  /** dist/bundle: the files, `build-id` and, when writable, the code cache. */
  readonly dir: string;
  /** Where the cache is looked for, in order; it is written to the first that takes it. */
  readonly cacheDirs: readonly string[];
  /** This process's Node flags and NODE_OPTIONS: V8 refuses a cache made under other flags. */
  readonly flags: string;
  /** Node's import(), for packages left outside the bundle (some are ES modules). */
  readonly importOutside: (specifier: string) => Promise<unknown>;
}

type Exports = Record<string, unknown>;
type Wrapper = (...args: unknown[]) => void;

/** A 32-bit FNV-1a hash, as hex: enough to tell flag sets apart in a file name. */
function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** The cache directories: beside the bundle, then the user's cache directory (the bundle may be installed read-only). */
export function defaultCacheDirs(dir: string, env: Record<string, string | undefined>, home: string | undefined): string[] {
  const user = env['XDG_CACHE_HOME'] || (home ? path.join(home, '.cache') : undefined);
  return user ? [dir, path.join(user, 'berth')] : [dir];
}

/** Reads a cache file: a 4-byte header length, a JSON header of name → [offset, length], the data. */
function readCache(file: string): Map<string, Buffer> | undefined {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return undefined;
  }
  try {
    const headLength = buf.readUInt32LE(0);
    const head = JSON.parse(buf.subarray(4, 4 + headLength).toString('utf8')) as Record<string, [number, number]>;
    const start = 4 + headLength;
    const entries = new Map<string, Buffer>();
    for (const [name, [offset, length]] of Object.entries(head)) {
      if (start + offset + length > buf.length) return undefined;
      entries.set(name, buf.subarray(start + offset, start + offset + length));
    }
    return entries;
  } catch {
    // Cut short or not ours: as if there were none; it is written again after this start.
    return undefined;
  }
}

function encodeCache(entries: Map<string, Buffer>): Buffer {
  const head: Record<string, [number, number]> = {};
  let offset = 0;
  for (const [name, data] of entries) {
    head[name] = [offset, data.length];
    offset += data.length;
  }
  const json = Buffer.from(JSON.stringify(head), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  return Buffer.concat([length, json, ...entries.values()]);
}

export class Bundle {
  private readonly modules = new Map<string, { exports: Exports }>();
  /** Scripts compiled since start, until their cache is written. */
  private scripts = new Map<string, vm.Script>();
  private cached: Map<string, Buffer>;
  /** A file was compiled without a cache V8 took: the cache is worth writing. */
  private stale = false;
  private readonly fileName: string;
  private readonly buildPrefix: string;
  private readonly outside: NodeJS.Require;

  constructor(private readonly opts: BundleOptions) {
    const buildId = fs.readFileSync(path.join(opts.dir, 'build-id'), 'utf8').trim();
    this.buildPrefix = `code-cache-${buildId}-`;
    this.fileName = `${this.buildPrefix}${process.version}-${process.arch}-${shortHash(opts.flags)}.bin`;
    this.cached = new Map();
    for (const dir of opts.cacheDirs) {
      const found = readCache(path.join(dir, this.fileName));
      if (found) {
        this.cached = found;
        break;
      }
    }
    this.outside = createRequire(path.join(opts.dir, 'main.cjs'));
  }

  /** The exports of one file of the bundle (`main.cjs`, `chunk-….cjs`), run once. */
  load(name: string): Exports {
    const known = this.modules.get(name);
    if (known) return known.exports;
    const module = { exports: {} as Exports };
    this.modules.set(name, module);
    const file = path.join(this.opts.dir, name);
    const cachedData = this.cached.get(name);
    const script = new vm.Script(fs.readFileSync(file, 'utf8'), { filename: file, ...(cachedData ? { cachedData } : {}) });
    if (!cachedData || script.cachedDataRejected === true) this.stale = true;
    this.scripts.set(name, script);
    const outside = this.outside;
    const require = Object.assign((spec: string): unknown => (spec.startsWith('./') ? this.load(spec.slice(2)) : outside(spec)), {
      resolve: outside.resolve,
      cache: outside.cache,
    });
    (script.runInThisContext() as Wrapper)(module.exports, require, module, file, this.opts.dir, pathToFileURL(file).href, this.opts.importOutside);
    return module.exports;
  }

  /** Names of the files loaded so far. */
  loaded(): string[] {
    return [...this.modules.keys()];
  }

  /**
   * Writes the code cache when a file was compiled without one, keeping the entries of files this
   * process did not load; then lets go of the scripts and the old cache. Never throws: without a
   * writable place the next start compiles, as it would have anyway.
   */
  saveCodeCache(): boolean {
    const scripts = this.scripts;
    const entries = this.cached;
    this.scripts = new Map();
    this.cached = new Map();
    if (!this.stale) return false;
    this.stale = false;
    for (const [name, script] of scripts) entries.set(name, script.createCachedData());
    const data = encodeCache(entries);
    for (const dir of this.opts.cacheDirs) {
      const file = path.join(dir, this.fileName);
      // Written whole, then renamed: another process starting reads the old file or the new one.
      const tmp = `${file}.${process.pid}.tmp`;
      try {
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(tmp, data);
        fs.renameSync(tmp, file);
      } catch {
        try {
          fs.rmSync(tmp, { force: true });
        } catch {
          // No such directory: nothing was written.
        }
        continue;
      }
      this.removeOtherBuilds(dir);
      return true;
    }
    return false;
  }

  /** Writes the code cache a little after start, when what starting compiles has been compiled; the timer keeps no process alive. */
  saveCodeCacheLater(delayMs = 2000): void {
    setTimeout(() => this.saveCodeCache(), delayMs).unref();
  }

  /** Caches of earlier builds are never offered again. */
  private removeOtherBuilds(dir: string): void {
    try {
      for (const name of fs.readdirSync(dir)) {
        if (name.startsWith('code-cache-') && !name.startsWith(this.buildPrefix)) fs.rmSync(path.join(dir, name), { force: true });
      }
    } catch {
      // Best effort: an old file only takes space.
    }
  }
}
