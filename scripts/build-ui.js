// Builds the dashboard (ui/src) into dist/ui: one hashed JS and CSS bundle plus index.html, so berth
// serves everything itself and browsers may cache the hashed files forever.
import { build } from 'esbuild';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'ui');

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: ['ui/src/main.tsx'],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: path.join(out, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});

const files = Object.keys(result.metafile.outputs).map((f) => path.relative(out, path.resolve(root, f)).split(path.sep).join('/'));
const js = files.find((f) => f.endsWith('.js'));
const css = files.find((f) => f.endsWith('.css'));
if (!js) throw new Error('esbuild produced no JavaScript bundle');

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>berth</title>
<link rel="icon" href="data:,">
${css ? `<link rel="stylesheet" href="${css}">\n` : ''}<script type="module" src="${js}"></script>
</head>
<body>
<div id="app"></div>
<noscript>The berth dashboard needs JavaScript. The same data is at /api/v1/stats.</noscript>
</body>
</html>
`;
await writeFile(path.join(out, 'index.html'), html);
const sizes = Object.entries(result.metafile.outputs).map(([f, o]) => `${path.basename(f)} ${(o.bytes / 1024).toFixed(1)} KiB`);
console.log(`dashboard built into dist/ui: ${sizes.join(', ')}`);
