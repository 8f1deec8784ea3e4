/** @module config/testkit — shared helpers for the config tests: temp files, the reference config. */

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, loadConfig, type ServeFlags } from './load.js';

export interface LoadCase {
  env?: Record<string, string>;
  flags?: ServeFlags;
  /** Files written beside config.yml, by relative name. */
  files?: Record<string, string>;
}

/** Helpers bound to one temp directory, which is also the working directory of every load. */
export function configKit(dir: string) {
  const write = (name: string, text: string): string => {
    const p = join(dir, name);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
    return p;
  };
  /** Loads `text` as config.yml in a fresh directory under `dir`. */
  const load = (text: string, opts: LoadCase = {}) => {
    const caseDir = mkdtempSync(join(dir, 'case-'));
    for (const [name, content] of Object.entries(opts.files ?? {})) {
      mkdirSync(dirname(join(caseDir, name)), { recursive: true });
      writeFileSync(join(caseDir, name), content);
    }
    const file = join(caseDir, 'config.yml');
    writeFileSync(file, text);
    return loadConfig({ file, env: opts.env ?? {}, flags: opts.flags ?? {}, cwd: dir });
  };
  return { write, load };
}

/** The problems of the ConfigError `fn` throws; fails the test if it throws nothing else. */
export function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.message, err.problems.join('\n'));
    return err.problems;
  }
  return assert.fail('expected a ConfigError');
}

export const PEM = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ==\n-----END CERTIFICATE-----\n';

/** The edge-site config.yml of docs/design.md, verbatim. */
export const REFERENCE = `version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
proxy:
  remoteurl: https://harbor.xing.com
  username: admin
  password: Harbor12345
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`;
