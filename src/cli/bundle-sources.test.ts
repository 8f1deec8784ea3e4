/** @module cli/bundle-sources.test — `berth export --from-registry URL --config FILE` takes the credentials of the config's upstream at that URL. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import { upstreamCredentials } from './bundle-sources.js';

const yaml = `version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/berth
upstreams:
  - name: hub
    remoteurl: https://registry-1.docker.io
  - name: harbor
    remoteurl: https://harbor.xing.com
    username: robot$export
    password: s3cret
    default: true
  - name: other
    remoteurl: http://harbor.xing.com:8080
    username: plain
    password: other
`;

function upstreams() {
  const dir = mkdtempSync(join(tmpdir(), 'berth-sources-'));
  try {
    writeFileSync(join(dir, 'config.yml'), yaml);
    return loadConfig({ file: 'config.yml', env: {}, cwd: dir }).config.upstreams;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the upstream whose remoteurl has the same origin lends its username and password', () => {
  const config = { upstreams: upstreams() };
  assert.deepEqual(upstreamCredentials(config.upstreams, 'https://harbor.xing.com'), { username: 'robot$export', password: 's3cret' });
  assert.deepEqual(upstreamCredentials(config.upstreams, 'https://harbor.xing.com/'), { username: 'robot$export', password: 's3cret' });
  assert.deepEqual(upstreamCredentials(config.upstreams, 'http://harbor.xing.com:8080'), { username: 'plain', password: 'other' });
});

test('no credentials for an upstream without a username, another port or scheme, or an unknown registry', () => {
  const config = { upstreams: upstreams() };
  assert.equal(upstreamCredentials(config.upstreams, 'https://registry-1.docker.io'), undefined);
  assert.equal(upstreamCredentials(config.upstreams, 'http://harbor.xing.com'), undefined);
  assert.equal(upstreamCredentials(config.upstreams, 'https://quay.io'), undefined);
  assert.equal(upstreamCredentials(config.upstreams, 'not a url'), undefined);
});
