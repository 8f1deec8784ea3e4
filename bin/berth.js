#!/usr/bin/env node
// Entry point installed as `berth`: runs the compiled composition root.
import { main } from '../dist/src/main.js';

main(process.argv.slice(2), process.env).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
