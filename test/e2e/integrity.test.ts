/** @module e2e/integrity.test — corrupt upstream bytes, SIGKILL mid-fill, and basic-auth upstreams against the real registry. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { startRegistry, type Registry } from '../fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../fixtures/image.js';
import { startBerth } from '../fixtures/berth.js';
import { startRelay } from '../fixtures/relay.js';
import { waitFor } from '../fixtures/proc.js';
import { httpPull } from '../fixtures/http-pull.js';

let registry: Registry;
let image: BuiltImage;

before(async () => {
  registry = await startRegistry({ auth: 'none' });
  image = await buildImage({ layers: 2, layerSize: 8 * 1024 * 1024, tag: 'v1' });
  await pushImage(image, registry.url, 'xing/app:v1');
});

after(async () => {
  await registry?.stop();
  await image?.remove();
});

/** Every committed blob in a berth store, re-hashed: returns the ones whose bytes do not match their name. */
async function corruptBlobs(root: string): Promise<string[]> {
  const bad: string[] = [];
  const base = path.join(root, 'blobs', 'sha256');
  for (const prefix of await readdir(base).catch(() => [] as string[])) {
    for (const hex of await readdir(path.join(base, prefix))) {
      const hash = createHash('sha256');
      for await (const c of createReadStream(path.join(base, prefix, hex))) hash.update(c as Buffer);
      if (hash.digest('hex') !== hex) bad.push(hex);
    }
  }
  return bad;
}

test('an upstream that flips a byte inside a layer: no client gets a complete 200, nothing is stored', async () => {
  const layer = image.layers[0]!;
  const hex = layer.digest.slice('sha256:'.length);
  const registryFile = path.join(registry.root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  const fh = await open(registryFile, 'r+');
  const original = Buffer.alloc(1);
  const middle = Math.floor(layer.size / 2);
  await fh.read(original, 0, 1, middle);
  await fh.write(Buffer.from([original[0]! ^ 0xff]), 0, 1, middle);
  const berth = await startBerth({ proxy: { remoteurl: registry.url } });
  try {
    const attempts = await Promise.all(
      Array.from({ length: 5 }, async () => {
        try {
          const res = await request(`${berth.url}/v2/xing/app/blobs/${layer.digest}`);
          let received = 0;
          for await (const chunk of res.body) received += (chunk as Buffer).length;
          return { status: res.statusCode, received, completed: true };
        } catch (err) {
          return { status: 0, received: -1, completed: false, err: (err as Error).message };
        }
      }),
    );
    for (const a of attempts)
      assert.ok(!(a.completed && a.status === 200 && a.received === layer.size), `a client received a complete 200: ${JSON.stringify(a)}`);
    await waitFor(async () => (await readdir(path.join(berth.root, 'tmp'))).length === 0, 5_000, { what: 'temp files removed' });
    const stored = await readdir(path.join(berth.root, 'blobs', 'sha256', hex.slice(0, 2))).catch(() => [] as string[]);
    assert.ok(!stored.includes(hex), 'corrupt content must not be stored');
    const failures = (await berth.logLines()).filter((l) => l['msg'] === 'blob fill failed; nothing stored');
    assert.ok(failures.length >= 1);
  } finally {
    await fh.write(original, 0, 1, middle);
    await fh.close();
    await berth.stop();
  }
  // With the registry's bytes repaired, the same berth store now fills correctly.
  const healed = await startBerth({ proxy: { remoteurl: registry.url } });
  try {
    assert.equal((await httpPull(healed.url, 'xing/app', 'v1')).manifestDigest, image.manifestDigest);
  } finally {
    await healed.stop();
  }
});

test('SIGKILL during a cold pull, restart, pull again: succeeds and no stored blob is corrupt', async () => {
  const relay = await startRelay({ targetPort: registry.port, rateBytesPerSec: 4 * 1024 * 1024 });
  const first = await startBerth({ proxy: { remoteurl: relay.url } });
  try {
    const pulling = httpPull(first.url, 'xing/app', 'v1').catch((e: Error) => e);
    await waitFor(() => relay.bytesToClient() > 6 * 1024 * 1024, 20_000, { what: 'fill in progress' });
    await first.kill('SIGKILL');
    assert.ok((await pulling) instanceof Error, 'the interrupted pull must fail, not complete');
    assert.deepEqual(await corruptBlobs(first.root), []);
    relay.configure({ rateBytesPerSec: 0 });
    const second = await startBerth({ proxy: { remoteurl: relay.url }, root: first.root });
    try {
      assert.deepEqual(await readdir(path.join(first.root, 'tmp')), [], 'partial files from the killed process are removed on start');
      const pulled = await httpPull(second.url, 'xing/app', 'v1');
      assert.equal(pulled.manifestDigest, image.manifestDigest);
      assert.deepEqual(await corruptBlobs(first.root), []);
    } finally {
      await second.stop();
    }
  } finally {
    await first.cleanup();
    await relay.stop();
  }
});

test('basic-auth upstream works; wrong credentials give UNAUTHORIZED naming the upstream', async () => {
  const users = { edge: 's3cret-pass' };
  const basic = await startRegistry({ auth: 'htpasswd', users });
  try {
    await pushImage(image, basic.url, 'xing/app:v1', { username: 'edge', password: users.edge });
    const good = await startBerth({ proxy: { remoteurl: basic.url, username: 'edge', password: users.edge } });
    try {
      assert.equal((await httpPull(good.url, 'xing/app', 'v1')).manifestDigest, image.manifestDigest);
    } finally {
      await good.stop();
    }
    const bad = await startBerth({ proxy: { remoteurl: basic.url, username: 'edge', password: 'wrong-password' } });
    try {
      const res = await request(`${bad.url}/v2/xing/app/manifests/v1`);
      const text = await res.body.text();
      assert.equal(res.statusCode, 401);
      const body = JSON.parse(text) as { errors: Array<{ code: string; message: string }> };
      assert.equal(body.errors[0]?.code, 'UNAUTHORIZED');
      assert.match(body.errors[0].message, new RegExp(basic.url.replace(/[.:/]/g, '\\$&')));
      assert.ok(!text.includes('wrong-password'), 'credentials never appear in responses');
      const logs = JSON.stringify(await bad.logLines());
      assert.ok(!logs.includes('wrong-password'), 'credentials never appear in logs');
    } finally {
      await bad.stop();
    }
  } finally {
    await basic.stop();
  }
});
