/** @module ops/code-shape.test — the shape docs/design.md §3 promises and lint does not check: no base name twice in src/, no import circle between modules. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../../../src/', import.meta.url));

/** Every module of src/ (tests and contract suites apart), as paths relative to src/. */
function modules(): string[] {
  return readdirSync(src, { recursive: true, encoding: 'utf8' })
    .map((f) => f.split(path.sep).join('/'))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.startsWith('ports/contract/'));
}

/** The modules of src/ that `file` imports or re-exports from, type-only imports included. */
function importsOf(file: string, known: ReadonlySet<string>): string[] {
  const text = readFileSync(path.join(src, file), 'utf8');
  const targets = [...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'(\.{1,2}\/[^']+)'/gms)].map((m) =>
    path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!.replace(/\.js$/, '.ts'))),
  );
  return targets.filter((t) => known.has(t));
}

test('no file base name occurs twice in src/', () => {
  const byName = new Map<string, string[]>();
  for (const f of modules()) byName.set(path.posix.basename(f), [...(byName.get(path.posix.basename(f)) ?? []), f]);
  assert.deepEqual(
    [...byName.values()].filter((paths) => paths.length > 1),
    [],
  );
});

test('no two modules of src/ import each other in a circle, directly or through others', () => {
  const all = modules();
  const known = new Set(all);
  const edges = new Map(all.map((f) => [f, importsOf(f, known)]));
  assert.ok([...edges.values()].flat().length > 300, 'the import scan found the imports');
  const done = new Set<string>();
  const circles: string[] = [];
  const visit = (f: string, trail: string[]): void => {
    const at = trail.indexOf(f);
    if (at >= 0) {
      circles.push([...trail.slice(at), f].join(' -> '));
      return;
    }
    if (done.has(f)) return;
    for (const next of edges.get(f) ?? []) visit(next, [...trail, f]);
    done.add(f);
  };
  for (const f of all) visit(f, []);
  assert.deepEqual(circles, []);
});
