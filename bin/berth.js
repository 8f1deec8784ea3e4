#!/usr/bin/env -S node --max-semi-space-size=2
// Entry point installed as `berth`: runs the bundled composition root (dist/bundle, built from
// dist/src by scripts/build-server.js: a few files to load instead of about 170). The flag is V8's young
// generation (2 MiB per semi-space instead of 16), set before the heap exists: about 10 MiB less
// resident memory for a serving process at no measurable CPU (docs/performance.md). Workers
// inherit it; `node bin/berth.js` runs without it unless NODE_OPTIONS or the command line sets it.
import { main } from '../dist/bundle/main.js';

main(process.argv.slice(2), process.env).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
