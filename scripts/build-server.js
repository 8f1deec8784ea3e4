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
  plugins: [lazyPackagesOutside, ownUrl],
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
