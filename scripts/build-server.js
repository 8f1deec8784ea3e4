// Bundles the compiled program (dist/src) into dist/bundle, which bin/berth.js runs: Node then
// loads a few files instead of about 170 modules at start. Code splitting keeps what main and
// the assembly import lazily (each command, each mode) in chunks of their own, loaded when used.
// Native modules stay outside. Each berth module's import.meta.url is rewritten to its file in
// dist/src, so what it finds beside itself (package.json, dist/ui, the bcrypt worker, undici's
// files) is found from the bundle as from dist/src. meta.json lists what each output file holds.
import { build } from 'esbuild';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'js' };
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
  // CommonJS packages in an ES module bundle call require() for Node's own modules.
  banner: { js: "import { createRequire as __berthRequire } from 'node:module'; const require = __berthRequire(import.meta.url);" },
  plugins: [lazyPackagesOutside, ownUrl, trimmedPackages],
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const meta = {};
for (const [file, o] of Object.entries(result.metafile.outputs)) {
  if (!file.endsWith('.js')) continue;
  meta[path.basename(file)] = Object.keys(o.inputs).map((i) => pathToFileURL(path.resolve(root, i)).href);
}
await writeFile(path.join(out, 'meta.json'), JSON.stringify(meta, null, 1) + '\n');
const sizes = Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith('.js'));
console.log(`server bundled into dist/bundle: ${sizes.length} files, ${(sizes.reduce((a, [, o]) => a + o.bytes, 0) / 1024).toFixed(0)} KiB`);
