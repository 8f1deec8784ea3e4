#!/usr/bin/env -S node --max-semi-space-size=2
// Entry point installed as `berth`: runs the bundled composition root (dist/bundle, built from
// dist/src by scripts/build-server.js: a few files to load instead of about 170), compiled with
// V8's code cache of an earlier start (src/bundle-loader.ts). The flag is V8's young
// generation (2 MiB per semi-space instead of 16), set before the heap exists: about 10 MiB less
// resident memory for a serving process at no measurable CPU (docs/performance.md). Workers
// inherit it; `node bin/berth.js` runs without it unless NODE_OPTIONS or the command line sets it.
import { homedir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Bundle, defaultCacheDirs } from '../dist/src/bundle-loader.js';

const dir = fileURLToPath(new URL('../dist/bundle', import.meta.url));
const bundle = new Bundle({
  dir,
  cacheDirs: defaultCacheDirs(dir, process.env, homedir()),
  flags: `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`,
  importOutside: (specifier) => import(specifier),
});
const { main } = bundle.load('main.cjs');

// `serve` runs this once its first requests are over (what they compiled is cached too); other
// commands end before a cache would be worth writing.
main(process.argv.slice(2), process.env, { startupWork: () => bundle.saveCodeCache() }).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
