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

/**
 * An open cache file: a 4-byte header length, a JSON header of name → [offset, length], the data.
 * Each file's entry is read when that file is loaded and dropped once compiled, so the cache does
 * not stay in memory (a buffer read whole would live on until a full collection).
 */
class CacheFile {
  private constructor(
    private readonly fd: number,
    private readonly start: number,
    private readonly head: Record<string, [number, number]>,
  ) {}

  static open(file: string): CacheFile | undefined {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return undefined;
    }
    try {
      const size = fs.fstatSync(fd).size;
      const length = Buffer.alloc(4);
      fs.readSync(fd, length, 0, 4, 0);
      const headLength = length.readUInt32LE(0);
      const json = Buffer.alloc(Math.min(headLength, size));
      fs.readSync(fd, json, 0, json.length, 4);
      const head = JSON.parse(json.toString('utf8')) as Record<string, [number, number]>;
      const start = 4 + headLength;
      const fits = (e: unknown): boolean =>
        Array.isArray(e) && e.length === 2 && e.every((n) => Number.isSafeInteger(n) && n >= 0) && start + e[0] + e[1] <= size;
      if (typeof head !== 'object' || head === null || !Object.values(head).every(fits)) throw new Error('cut short or not a cache');
      return new CacheFile(fd, start, head);
    } catch {
      // Cut short or not ours: as if there were none; it is written again after this start.
      fs.closeSync(fd);
      return undefined;
    }
  }

  names(): string[] {
    return Object.keys(this.head);
  }

  read(name: string): Buffer | undefined {
    const at = this.head[name];
    if (!at) return undefined;
    const data = Buffer.allocUnsafe(at[1]);
    try {
      return fs.readSync(this.fd, data, 0, at[1], this.start + at[0]) === at[1] ? data : undefined;
    } catch {
      return undefined;
    }
  }

  close(): void {
    fs.closeSync(this.fd);
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
  private cached: CacheFile | undefined;
  /** A file was compiled without a cache V8 took: the cache is worth writing. */
  private stale = false;
  private readonly fileName: string;
  private readonly buildPrefix: string;
  private readonly outside: NodeJS.Require;

  constructor(private readonly opts: BundleOptions) {
    const buildId = fs.readFileSync(path.join(opts.dir, 'build-id'), 'utf8').trim();
    this.buildPrefix = `code-cache-${buildId}-`;
    this.fileName = `${this.buildPrefix}${process.version}-${process.arch}-${shortHash(opts.flags)}.bin`;
    for (const dir of opts.cacheDirs) {
      this.cached = CacheFile.open(path.join(dir, this.fileName));
      if (this.cached) break;
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
    const cachedData = this.cached?.read(name);
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
    const old = this.cached;
    this.scripts = new Map();
    this.cached = undefined;
    const entries = new Map<string, Buffer>();
    if (this.stale) {
      this.stale = false;
      for (const [name, script] of scripts) entries.set(name, script.createCachedData());
      // Files this process did not load keep the entries they had.
      for (const name of old?.names() ?? []) {
        const data = entries.has(name) ? undefined : old?.read(name);
        if (data) entries.set(name, data);
      }
    }
    old?.close();
    if (entries.size === 0) return false;
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
