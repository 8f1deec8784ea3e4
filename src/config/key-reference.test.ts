/** @module config/key-reference.test — docs/configuration.md is what the schema generates now. */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { configurationReference, REGENERATE } from './key-reference.js';
import { LOG_LEVELS } from './schema.js';

// Compiled to dist/src/config/: the repository root is three folders up.
const committed = () => readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');

test('docs/configuration.md is current with the schema', () => {
  assert.ok(committed() === configurationReference(), `docs/configuration.md is out of date with src/config/schema.ts; regenerate it with \`${REGENERATE}\``);
});

test('the reference documents every key with its type, default and environment variable, recent keys included', () => {
  const doc = configurationReference();
  for (const key of ['storage.reserve', 'admin.trustloopback', 'http.workers', 'upstreams[].pushmode', 'cluster.advertise', 'site.interval']) {
    assert.match(doc, new RegExp(`### \`${key.replace(/[.[\]]/g, '\\$&')}\`\n\n\\S`), key);
  }
  assert.match(doc, /### `storage\.reserve`[^#]*- Type: size\n- Default: 8MiB\n/);
  assert.match(doc, /- Environment: `REGISTRY_UPSTREAMS_<n>_REMOTEURL`/);
  assert.match(doc, new RegExp(`- Type: one of ${LOG_LEVELS.join(', ')}`));
  assert.match(doc, /## Accepted for compatibility, not used[^#]*- `storage\.cache`/);
});
