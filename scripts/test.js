#!/usr/bin/env node
/**
 * Runs every test file under dist/: files marked `@serial` one at a time after the others, the rest
 * two at a time. Each file starts its own servers on free ports in its own directories, so most can
 * share the machine; a file that measures what a process or a link does under a known load (bytes
 * over a throttled link while a worker is killed, say) is marked `@serial` in its module comment.
 *
 * BERTH_TEST_CONCURRENCY sets how many unmarked files run at once (default 2); extra arguments are
 * passed to `node --test` (for example `--test-name-pattern`).
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dist = path.join(root, 'dist');
const concurrency = Number(process.env.BERTH_TEST_CONCURRENCY ?? 2);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error(`BERTH_TEST_CONCURRENCY must be a whole number >= 1 (got ${process.env.BERTH_TEST_CONCURRENCY})`);
  process.exit(2);
}

async function testFiles(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await testFiles(p)));
    else if (entry.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

/** The marker sits in the file's opening comment; only the head is read. */
async function isSerial(file) {
  const head = (await readFile(file, 'utf8')).slice(0, 4096);
  return /@serial\b/.test(head);
}

function run(files, n) {
  if (files.length === 0) return Promise.resolve(0);
  const args = ['--test', `--test-concurrency=${n}`, '--test-timeout=600000', ...process.argv.slice(2), ...files];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: 'inherit', cwd: root });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const files = (await testFiles(dist)).sort();
const marks = await Promise.all(files.map(isSerial));
const serial = files.filter((_, i) => marks[i]);
const shared = files.filter((_, i) => !marks[i]);
const started = Date.now();
const sharedCode = await run(shared, concurrency);
const sharedSecs = Math.round((Date.now() - started) / 1000);
const serialCode = await run(serial, 1);
const totalSecs = Math.round((Date.now() - started) / 1000);
console.log(
  `\ntest files: ${shared.length} ${concurrency} at a time (${sharedCode === 0 ? 'passed' : 'FAILED'}, ${sharedSecs} s), ` +
    `${serial.length} one at a time (${serialCode === 0 ? 'passed' : 'FAILED'}, ${totalSecs - sharedSecs} s)`,
);
process.exit(sharedCode !== 0 ? sharedCode : serialCode);
