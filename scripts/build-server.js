// Bundles the compiled program (dist/src) into dist/bundle, which bin/berth.js runs: Node then
// loads a few files instead of about 170 modules at start. Code splitting keeps what main and
// the assembly import lazily (each command, each mode) in chunks of their own, loaded when used.
// Native modules stay outside. Each berth module's import.meta.url is rewritten to its file in
// dist/src, so what it finds beside itself (package.json, dist/ui, the bcrypt worker, undici's
// files) is found from the bundle as from dist/src. meta.json lists what each output file holds.
//
// esbuild splits ES modules only; each output file is then turned into a CommonJS script
// (`.cjs`), which src/bundle-loader.ts compiles with V8's code cache: Node 20 has no compile
// cache for ES modules, and compiling the bundle's source was most of the CPU to start.
import { build, transform } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
// Built by tsc before this runs (npm run build).
import { WRAPPER_HEAD, WRAPPER_TAIL } from '../dist/src/bundle-loader.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'dist', 'src');
const out = path.join(root, 'dist', 'bundle');

/** Packages with native code or files they find at run time: loaded from node_modules as before. */
const EXTERNAL = ['better-sqlite3', 'koffi'];

// A package imported lazily (`import('yaml')`) stays outside too: a CommonJS package split into a
// chunk of its own comes out with a default export only, so its named exports would be missing
// (`stringify is not a function`); Node's own loader gives them. Statically imported ones are bundled.
const lazyPackagesOutside = {
  name: 'lazy-packages-outside',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, external: true } : undefined));
  },
};

const ownUrl = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(src + path.sep)) return undefined;
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const rel = path.relative(out, args.path).split(path.sep).join('/');
      // __berthUrl: the URL of the bundle file, given to it by src/bundle-loader.ts.
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, __berthUrl).href`), loader: 'js' };
    });
  },
};

// Two packages load more at import than berth ever uses; what they load is cut here, in the bundle
// only (each saves CPU on every start, docs/performance.md):
// - zod's index re-exports all 64 of its error-message locales (340 KB to parse) as `z.locales`,
//   which berth never reads: only English, which zod itself configures, is kept.
// - commander requires node:child_process (with its own dependencies, about 15 ms) for
//   subcommands that are separate executables, which berth does not have: it is required when
//   such a command would be spawned.
const trimmedPackages = {
  name: 'trimmed-packages',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({
      contents: 'export { default as en } from "./en.js";\n',
      loader: 'js',
    }));
    b.onLoad({ filter: /[\\/]node_modules[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const eager = "const childProcess = require('node:child_process');";
      if (!text.includes(eager)) throw new Error(`${args.path}: commander no longer requires node:child_process as expected`);
      return { contents: text.replace(eager, "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };"), loader: 'js' };
    });
  },
};

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { main: path.join(src, 'main.js') },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: out,
  chunkNames: 'chunk-[hash]',
  external: EXTERNAL,
  plugins: [lazyPackagesOutside, ownUrl, trimmedPackages],
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
});

/** `chunk-X.js` (an output of the split build) as the CommonJS file it becomes. */
const cjsName = (file) => path.basename(file).replace(/\.js$/, '.cjs');

// import() of another output file becomes a require() of it, run when the promise is awaited as
// before; import() of a package left outside stays an import() through __berthImport, the
// loader's own (a package may be an ES module: jose). The count must match what esbuild
// recorded, so a form this does not know fails the build instead of the program.
function toCommonJs(code, file, imports) {
  const dynamic = imports.filter((i) => i.kind === 'dynamic-import');
  let seen = 0;
  const out = code.replace(/\bimport\("([^"]+)"\)/g, (_, spec) => {
    seen++;
    return spec.startsWith('./') ? `Promise.resolve().then(() => require(${JSON.stringify(`./${cjsName(spec)}`)}))` : `__berthImport(${JSON.stringify(spec)})`;
  });
  if (seen !== dynamic.length) throw new Error(`${file}: ${seen} import() calls rewritten, esbuild recorded ${dynamic.length}`);
  return out;
}

const meta = {};
const hash = createHash('sha256');
let bytes = 0;
for (const file of result.outputFiles) {
  if (!file.path.endsWith('.js')) continue;
  const o = result.metafile.outputs[path.relative(root, file.path).split(path.sep).join('/')];
  const esm = toCommonJs(file.text, file.path, o.imports);
  const transformed = await transform(esm, { format: 'cjs', platform: 'node', target: 'node20', legalComments: 'none', logLevel: 'warning' });
  // Static imports of other output files, now require() calls.
  const code = transformed.code
    .replace(/\brequire\("\.\/(main|chunk-[A-Z0-9]+)\.js"\)/g, (_, name) => `require("./${name}.cjs")`)
    // The few characters beyond ASCII esbuild leaves (in comments and a regular expression) as
    // \u escapes, which mean the same there: a file of ASCII is read into a string of one byte
    // per character, without decoding; one such character makes the whole file two bytes each.
    // U+2028 and U+2029 would end a line comment, so they are left as they are.
    .replace(/[^\t-\x7f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (/\bimport\.meta\b/.test(code)) throw new Error(`${file.path}: import.meta is left in the bundle`);
  const name = cjsName(file.path);
  await writeFile(path.join(out, name), WRAPPER_HEAD + code + WRAPPER_TAIL);
  hash.update(name).update(code);
  bytes += code.length;
  meta[name] = Object.keys(o.inputs).map((i) => pathToFileURL(path.resolve(root, i)).href);
}
await writeFile(path.join(out, 'meta.json'), JSON.stringify(meta, null, 1) + '\n');
// Names the code cache: one made for other bytes is never offered to V8 (src/bundle-loader.ts).
await writeFile(path.join(out, 'build-id'), hash.digest('hex').slice(0, 16));
console.log(`server bundled into dist/bundle: ${Object.keys(meta).length} files, ${(bytes / 1024).toFixed(0)} KiB`);
