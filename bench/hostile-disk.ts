/** @module bench/hostile-disk — issue 21's full-disk matrix for `npm run hostile`: berth on a small tmpfs, ENOSPC hit at each write site (blob fill, upload, metadata.db, push.db, lock file at start). */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { startBerth, type Berth } from '../test/fixtures/berth.js';
import { makeTempDir, removeDir, run } from '../test/fixtures/proc.js';
import { call, digestOf, OCI_MANIFEST } from '../test/fixtures/oci-http.js';
import { ALICE, aliceAuth, expectStatus, htpasswdFile, makeManifest, pushWith, timed, withBerth, type Case } from './hostile-kit.js';
import type { CaseContext } from './hostile-cases.js';

/** The store's size: a few MiB, so a 10 MiB upload or a 4 MiB layer cannot fit. */
const TMPFS = '6m';

/** Mounts a tmpfs of TMPFS for one case and removes it afterwards. */
async function onTmpfs(fn: (root: string) => Promise<string[]>): Promise<string[]> {
  const mountpoint = await makeTempDir('berth-hostile-disk-');
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS}`, 'tmpfs', mountpoint]);
  } catch (err) {
    await removeDir(mountpoint);
    return [`cannot mount a tmpfs here (needs root): ${(err as Error).message.split('\n')[0]}`];
  }
  try {
    const root = path.join(mountpoint, 'store');
    await mkdir(root);
    return await fn(root);
  } finally {
    await run('umount', [mountpoint]).catch(() => undefined);
    await removeDir(mountpoint);
  }
}

/** Writes a file until the file system is full; returns its path (delete it to free the space). */
async function fill(root: string): Promise<string> {
  const file = path.join(path.dirname(root), 'filler');
  const fh = await open(file, 'a');
  const chunk = Buffer.alloc(16 * 1024, 1);
  try {
    for (;;) await fh.write(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close();
  }
  return file;
}

/** Empty files left in uploads/ (a failed session create must leave none). */
async function emptyUploads(root: string): Promise<number> {
  const dir = path.join(root, 'uploads');
  const names = await readdir(dir).catch(() => [] as string[]);
  let n = 0;
  for (const name of names) if ((await stat(path.join(dir, name)).catch(() => null))?.size === 0) n++;
  return n;
}

/** What /readyz says about the store: it must not claim all is well on a full disk. */
async function readyzProblem(b: Berth): Promise<string | null> {
  const r = await timed(b.url, 'GET', '/readyz');
  const store = (r.status === 200 || r.status === 503 ? (JSON.parse(r.body.toString()) as { store?: { writable?: boolean } }).store : undefined) ?? {};
  return r.status === 503 || store.writable === false ? null : `/readyz ${r.status} ${r.body.toString().slice(0, 120)} on a full disk`;
}

/** A small push that must work once space is back: the failed requests freed what they wrote. */
async function smallPush(b: Berth, problems: string[], what: string, headers: Record<string, string> = {}): Promise<void> {
  expectStatus(problems, what, await pushWith(b.url, `disk/after-${Date.now()}`, makeManifest(randomBytes(100), [randomBytes(2000)]), headers), [201]);
}

const quiet = { log: { accesslog: { disabled: true } } };

export function diskCases(ctx: CaseContext): Case[] {
  return [
    {
      name: 'full disk: uploads',
      expected: `${TMPFS} store: 10 MiB monolithic POST 507, 10 MiB PATCH 507; then POST 202, DELETE of the partial upload 204/404 (never 500); no empty file in uploads/; a small push 201`,
      run: () =>
        onTmpfs((root) =>
          withBerth({ root, config: { version: 0.1, ...quiet } }, async (b, problems) => {
            const big = randomBytes(10 * 2 ** 20);
            expectStatus(
              problems,
              '10 MiB monolithic POST',
              await timed(b.url, 'POST', `/v2/disk/full/blobs/uploads/?digest=${digestOf(big)}`, { body: big }, 30_000),
              [507],
            );
            const start = await call(b.url, 'POST', '/v2/disk/full/blobs/uploads/');
            expectStatus(problems, 'POST after the 507', start, [202]);
            const location = start.header('location') ?? '/v2/disk/full/blobs/uploads/none';
            expectStatus(
              problems,
              '10 MiB PATCH',
              await timed(b.url, 'PATCH', location, { body: big, headers: { 'content-type': 'application/octet-stream' } }, 30_000),
              [507],
            );
            for (let i = 0; i < 3; i++)
              expectStatus(problems, `POST ${i + 1} after the PATCH`, await call(b.url, 'POST', '/v2/disk/full/blobs/uploads/'), [202]);
            expectStatus(problems, 'DELETE of the partial upload', await call(b.url, 'DELETE', location), [204, 404]);
            const empty = await emptyUploads(root);
            if (empty > 0) problems.push(`${empty} empty files in uploads/`);
            await smallPush(b, problems, 'small push afterwards');
          }),
        ),
    },
    {
      name: 'full disk: metadata.db, session files, /readyz',
      expected:
        'disk filled to the last byte by another file: POST and a small push 201/202 or 507 (never 500); no empty file in uploads/; /readyz reports the disk; space back: a push 201',
      run: () =>
        onTmpfs((root) =>
          withBerth({ root, config: { version: 0.1, ...quiet } }, async (b, problems) => {
            const filler = await fill(root);
            for (let i = 0; i < 3; i++)
              expectStatus(problems, `POST ${i + 1} on a full disk`, await call(b.url, 'POST', '/v2/disk/meta/blobs/uploads/'), [202, 507]);
            const m = makeManifest(randomBytes(50), [randomBytes(500)]);
            const pushed = await pushWith(b.url, 'disk/meta', m, {}).catch((err: Error) => ({ status: 0, body: Buffer.from(err.message.slice(0, 200)) }));
            expectStatus(problems, 'small push on a full disk', pushed, [201, 507]);
            const empty = await emptyUploads(root);
            if (empty > 0) problems.push(`${empty} empty files in uploads/ after failed session creates`);
            const ready = await readyzProblem(b);
            if (ready) problems.push(ready);
            await rm(filler);
            await smallPush(b, problems, 'push once space is back');
          }),
        ),
    },
    {
      name: 'full disk: push.db (write-behind)',
      expected: 'write-behind with the disk full: a push 201 or 507 (never 500); space back: a push 201 and berth queues it',
      run: async () => {
        const htpasswd = await htpasswdFile(ctx.work, [{ ...ALICE, cost: 5 }]);
        return onTmpfs((root) =>
          withBerth(
            {
              root,
              config: {
                version: 0.1,
                ...quiet,
                proxy: { remoteurl: ctx.registryUrl, pushmode: 'write-behind' },
                auth: { htpasswd: { realm: 'edge', path: htpasswd } },
              },
            },
            async (b, problems) => {
              const filler = await fill(root);
              const m = makeManifest(randomBytes(50), [randomBytes(500)]);
              const pushed = await pushWith(b.url, 'disk/queue', m, aliceAuth()).catch((err: Error) => ({
                status: 0,
                body: Buffer.from(err.message.slice(0, 200)),
              }));
              expectStatus(problems, 'write-behind push on a full disk', pushed, [201, 507]);
              await rm(filler);
              await smallPush(b, problems, 'write-behind push once space is back', aliceAuth());
            },
          ),
        );
      },
    },
    {
      name: 'full disk: blob fill (pull-through)',
      expected: 'disk full: a pull of a 4 MiB layer not yet cached is served whole and right (passed through) or 507, never 500 or a hang',
      run: () =>
        onTmpfs((root) =>
          withBerth({ root, config: { version: 0.1, ...quiet, proxy: { remoteurl: ctx.registryUrl } } }, async (b, problems) => {
            const manifest = await call(b.url, 'GET', '/v2/hostile/app/manifests/v1', { headers: { accept: OCI_MANIFEST } });
            expectStatus(problems, 'manifest pull', manifest, [200]);
            const layer = (manifest.json<{ layers: Array<{ digest: string; size: number }> }>().layers ?? []).reduce((a, l) => (l.size > a.size ? l : a), {
              digest: '',
              size: 0,
            });
            await fill(root);
            const got = await timed(b.url, 'GET', `/v2/hostile/app/blobs/${layer.digest}`, {}, 30_000);
            if (got.status === 200 && digestOf(got.body) !== layer.digest) problems.push(`200 with ${got.body.length} wrong bytes`);
            else expectStatus(problems, 'layer pull on a full disk', got, [200, 507]);
          }),
        ),
    },
    {
      name: 'full disk: restart (lock file, tmp/, uploads/)',
      expected:
        "killed with the disk full (a 507 PATCH's partial upload and another file): berth starts again on it, answers /v2/ 200 and serves the blob it held",
      run: () =>
        onTmpfs(async (root) => {
          const problems: string[] = [];
          const config = { version: 0.1, ...quiet };
          const first = await startBerth({ root, config });
          const kept = randomBytes(3000);
          const m = makeManifest(randomBytes(50), [kept]);
          expectStatus(problems, 'push before', await pushWith(first.url, 'disk/kept', m, {}), [201]);
          // The disk fills as in issue 21: a 10 MiB PATCH (507) leaves its partial upload, another file takes the rest.
          const start = await call(first.url, 'POST', '/v2/disk/kept/blobs/uploads/');
          await timed(first.url, 'PATCH', start.header('location') ?? '/', {
            body: randomBytes(10 * 2 ** 20),
            headers: { 'content-type': 'application/octet-stream' },
          });
          await fill(root);
          await first.kill();
          await first.cleanup().catch((err: Error) => problems.push(`first berth: ${err.message.split('\n')[0]}`));
          let second: Berth | undefined;
          try {
            second = await startBerth({ root, config });
            expectStatus(problems, 'GET /v2/ after the restart', await call(second.url, 'GET', '/v2/'), [200]);
            const blob = await call(second.url, 'GET', `/v2/disk/kept/blobs/${m.layers[0]!.digest}`);
            if (blob.status !== 200 || !blob.body.equals(kept)) problems.push(`the held blob after the restart: ${blob.status}`);
          } catch (err) {
            problems.push(`berth does not start on a full disk: ${(err as Error).message.split('\n').slice(0, 2).join(' ')}`);
          } finally {
            await second?.stop().catch((err: Error) => problems.push(`second berth: ${err.message.split('\n')[0]}`));
          }
          return problems;
        }),
    },
  ];
}
