/** @module bench/hostile-cases — the named cases of issue 21 for `npm run hostile` (all but the full disk): each states its expected outcome and reports what broke. */
import { randomBytes } from 'node:crypto';
import { sleep } from '../test/fixtures/proc.js';
import { call, uploadBlob, OCI_MANIFEST } from '../test/fixtures/oci-http.js';
import { basic } from '../test/fixtures/oci-call.js';
import { fromAddress, holdHalfOpen, rawExchange } from '../test/fixtures/hostile.js';
import { readStatus } from './memory.js';
import {
  ALICE,
  BOB,
  RULES,
  aliceAuth,
  bobAuth,
  expectStatus,
  htpasswdFile,
  makeManifest,
  manifestNaming,
  pushWith,
  timed,
  withBerth,
  type Case,
} from './hostile-kit.js';

export interface CaseContext {
  /** The central registry (plain docker-registry), holding hostile/app:v1. */
  registryUrl: string;
  /** A temp dir for htpasswd files. */
  work: string;
}

const PUSH_MODES = ['plain', 'local', 'write-through', 'write-behind'] as const;

/** Item 1: bob names alice's private layer in a manifest of his own, in every push mode. */
function crossRepoCases(ctx: CaseContext): Case[] {
  return PUSH_MODES.map((mode) => ({
    name: `cross-repo manifest (${mode})`,
    expected: "bob's PUT naming alice/secret's layer: 400 MANIFEST_BLOB_UNKNOWN; GET of that layer under bob/x: 404; alice's own push: 201",
    run: async () => {
      const htpasswd = await htpasswdFile(ctx.work, [
        { ...ALICE, cost: 5 },
        { ...BOB, cost: 5 },
      ]);
      const proxy = mode === 'plain' ? {} : { proxy: { remoteurl: ctx.registryUrl, pushmode: mode } };
      return withBerth(
        { config: { version: 0.1, log: { accesslog: { disabled: true } }, ...proxy, auth: { htpasswd: { realm: 'edge', path: htpasswd }, rules: RULES } } },
        async (b, problems) => {
          const secret = makeManifest(randomBytes(300), [randomBytes(50_000)]);
          expectStatus(problems, 'alice pushes alice/secret', await pushWith(b.url, `alice/secret-${mode}`, secret, aliceAuth()), [201]);
          const layer = secret.layers[0]!;
          // bob's own config, uploaded where his manifest goes: only alice's layer is foreign.
          const own = makeManifest(randomBytes(200), []).config;
          await uploadBlob(b.url, 'bob/x', own.data, 'sha256', bobAuth());
          const body = manifestNaming(own, [layer]);
          const put = await timed(b.url, 'PUT', '/v2/bob/x/manifests/evil', { body, headers: { ...bobAuth(), 'content-type': OCI_MANIFEST } });
          expectStatus(problems, "bob's manifest naming alice's layer", put, [400], 'MANIFEST_BLOB_UNKNOWN');
          const read = await timed(b.url, 'GET', `/v2/bob/x/blobs/${layer.digest}`, { headers: bobAuth() });
          if (read.body.includes(layer.data.subarray(0, 64))) problems.push(`bob read alice's layer under bob/x (${read.status}, ${read.body.length} bytes)`);
          else expectStatus(problems, "GET of alice's layer under bob/x", read, [404]);
          const subject = manifestNaming(own, [], { subject: { mediaType: OCI_MANIFEST, digest: secret.digest, size: secret.bytes.length } });
          const sub = await timed(b.url, 'PUT', '/v2/bob/x/manifests/sub', { body: subject, headers: { ...bobAuth(), 'content-type': OCI_MANIFEST } });
          const refs = await timed(b.url, 'GET', `/v2/bob/x/referrers/${secret.digest}`, { headers: bobAuth() });
          if (sub.status >= 500 || refs.status >= 500) problems.push(`subject naming alice's manifest: PUT ${sub.status}, referrers ${refs.status}`);
        },
      );
    },
  }));
}

/** Item 2: query parameters a client controls are validated: 400 naming them, at once. */
function badQueryCase(): Case {
  const paths = [
    ...['x', '-1', '1.5', '1e309', '%00', '12345678901234567890'].map((n) => `/v2/_catalog?n=${n}`),
    '/v2/_catalog?last=%00',
    '/v2/hostile/app/tags/list?n=x',
    '/v2/hostile/app/tags/list?n=-1',
    '/v2/hostile/app/tags/list?last=%ff%00',
    `/v2/hostile/app/referrers/sha256:${'a'.repeat(64)}?artifactType=%00`,
    '/v2/hostile/app/referrers/sha256:zz',
  ];
  return {
    name: 'bad query parameters',
    expected: `each of ${paths.length} requests (_catalog n=x/-1/1.5/1e309/%00/20 digits, tags n/last, referrers artifactType/digest) answers 400 within 5 s; no uncaught error logged`,
    run: () =>
      withBerth({ config: { version: 0.1, log: { accesslog: { disabled: true } } } }, async (b, problems) => {
        for (const p of paths) expectStatus(problems, p, await timed(b.url, 'GET', p), [400]);
      }),
  };
}

/** Item 3: 4 addresses x 16 silent sockets at maxconnections 64 never shut out a fifth, beyond headerstimeout + a few seconds. */
function silentSocketsCase(): Case {
  return {
    name: 'silent sockets from 4 addresses',
    expected:
      'maxconnections 64 (16 per client), headerstimeout 2s: 4 addresses x 16 half-sent requests that never close their side are answered 408; 5 s after the timeout a fifth address and a holding address get 200',
    run: () =>
      withBerth(
        {
          config: {
            version: 0.1,
            log: { accesslog: { disabled: true } },
            http: { headerstimeout: '2s', maxconnections: 64, maxconnectionsperclient: 16, workers: 1 },
          },
        },
        async (b, problems) => {
          const held = (
            await Promise.all(['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'].map((a) => holdHalfOpen(b.port, 16, a, { keepOpen: true })))
          ).flat();
          await sleep(7_000);
          const answered = held.filter((h) => h.received.startsWith('HTTP/1.1 408')).length;
          if (answered < held.length) problems.push(`${answered} of ${held.length} silent sockets answered 408`);
          const fifth = await fromAddress(`${b.url}/v2/`, { localAddress: '127.0.0.7' }).catch((e: Error) => ({ status: 0, body: Buffer.from(e.message) }));
          expectStatus(problems, 'a fifth address', fifth, [200]);
          const again = await fromAddress(`${b.url}/v2/`, { localAddress: '127.0.0.3' }).catch((e: Error) => ({ status: 0, body: Buffer.from(e.message) }));
          expectStatus(problems, 'a holding address once its sockets were answered', again, [200]);
          held.forEach((h) => h.socket.destroy());
        },
      ),
  };
}

/** Item 4: referrers lists are bounded in count and bytes, and memory stays bounded under four concurrent largest answers. */
function hugeReferrersCase(): Case {
  const RSS_BOUND_MIB = 512;
  return {
    name: 'huge referrers',
    expected: `24 referrers with ~3.9 MB annotations each: refused at push (400) or listed in pages of at most 4 MiB; 4 concurrent referrers GETs keep RSS under ${RSS_BOUND_MIB} MiB; /healthz answers within 1 s meanwhile`,
    run: () =>
      withBerth({ config: { version: 0.1, log: { accesslog: { disabled: true } }, http: { workers: 1 } } }, async (b, problems) => {
        const subject = makeManifest(randomBytes(100), [randomBytes(1000)]);
        expectStatus(problems, 'subject push', await pushWith(b.url, 'refs/app', subject, {}), [201]);
        const empty = makeManifest(Buffer.from('{}'), []);
        const big = 'a'.repeat(3_900_000);
        let accepted = 0;
        for (let i = 0; i < 24; i++) {
          const m = makeManifest(empty.config.data, [], {
            subject: { digest: subject.digest, size: subject.bytes.length, mediaType: OCI_MANIFEST },
            artifactType: 'application/vnd.example',
            annotations: { n: String(i), big },
          });
          const put = await (i === 0
            ? pushWith(b.url, 'refs/app', m, {}, `r${i}`)
            : call(b.url, 'PUT', `/v2/refs/app/manifests/r${i}`, { body: m.bytes, headers: { 'content-type': OCI_MANIFEST } }));
          if (put.status === 201) accepted++;
          else if (put.status >= 500) problems.push(`referrer push ${i}: ${put.status}`);
        }
        const before = (await readStatus(b.service.pid))?.rssKiB ?? 0;
        let peak = before;
        let slowest = 0;
        let stop = false;
        const watch = (async () => {
          while (!stop) {
            const t = performance.now();
            const h = await timed(b.url, 'GET', '/healthz', {}, 10_000);
            slowest = Math.max(slowest, h.status === 200 ? performance.now() - t : 10_000);
            peak = Math.max(peak, (await readStatus(b.service.pid))?.rssKiB ?? 0);
            await sleep(100);
          }
        })();
        const answers = await Promise.all(Array.from({ length: 4 }, () => timed(b.url, 'GET', `/v2/refs/app/referrers/${subject.digest}`, {}, 60_000)));
        stop = true;
        await watch;
        for (const a of answers) {
          if (a.status !== 200) problems.push(`referrers GET ${a.status}`);
          else if (a.body.length > 4 * 1024 * 1024)
            problems.push(
              `referrers answer of ${(a.body.length / 2 ** 20).toFixed(1)} MiB (${accepted} referrers accepted, Link ${a.header('link') ? 'set' : 'absent'})`,
            );
        }
        if (peak / 1024 > RSS_BOUND_MIB) problems.push(`RSS ${(before / 1024).toFixed(0)} -> ${(peak / 1024).toFixed(0)} MiB`);
        if (slowest > 1_000) problems.push(`/healthz took ${slowest.toFixed(0)} ms during the GETs`);
      }),
  };
}

/** Item 6: the admin API's loopback trust needs a loopback Host, no forwarding header, no foreign Origin, a JSON body; guesses back off; bad encoding is 400. */
function adminCases(ctx: CaseContext): Case[] {
  const plain = { version: 0.1, log: { accesslog: { disabled: true } }, proxy: { remoteurl: ctx.registryUrl } };
  return [
    {
      name: 'admin CSRF and DNS rebinding',
      expected:
        'loopback trust (no auth:): text/plain POST /api/v1/evict with a foreign Origin 4xx and nothing evicted; Host evil.example 4xx; X-Forwarded-For 4xx; Host localhost works',
      run: () =>
        withBerth({ config: plain }, async (b, problems) => {
          expectStatus(problems, 'pull through', await call(b.url, 'GET', '/v2/hostile/app/manifests/v1', { headers: { accept: OCI_MANIFEST } }), [200]);
          const csrf = await call(b.url, 'POST', '/api/v1/evict', {
            headers: { 'content-type': 'text/plain', origin: 'http://evil.example' },
            body: '{"image":"hostile/app:v1"}',
          });
          expectStatus(problems, 'cross-origin text/plain evict', csrf, [400, 401, 403, 415]);
          const still = await call(b.url, 'GET', '/api/v1/images', { headers: { host: 'localhost' } });
          if (!still.body.toString().includes('hostile/app')) problems.push('the image was evicted by the cross-origin request');
          expectStatus(
            problems,
            'Host evil.example (rebinding)',
            await call(b.url, 'GET', '/api/v1/images', { headers: { host: 'evil.example:5000' } }),
            [401, 403, 421],
          );
          expectStatus(
            problems,
            'X-Forwarded-For from a proxy on loopback',
            await call(b.url, 'GET', '/api/v1/images', { headers: { 'x-forwarded-for': '10.1.2.3' } }),
            [401, 403],
          );
          expectStatus(problems, 'Host localhost', still, [200]);
        }),
    },
    {
      name: 'admin brute force and bad encoding',
      expected: 'admin credentials set: 40 wrong guesses from one address meet 429 (backoff as registry logins); GET /api/v1/warm/%ff 400',
      run: () =>
        withBerth({ config: { ...plain, admin: { username: 'ops', password: 'ops-secret-pw' } } }, async (b, problems) => {
          const statuses: number[] = [];
          for (let i = 0; i < 40; i++)
            statuses.push((await fromAddress(`${b.url}/api/v1/stats`, { headers: basic('ops', `guess-${i}`), localAddress: '127.0.0.8' })).status);
          if (!statuses.includes(429)) problems.push(`40 wrong admin guesses: ${[...new Set(statuses)].join('/')} only, no 429`);
          expectStatus(problems, 'GET /api/v1/warm/%ff', await call(b.url, 'GET', '/api/v1/warm/%ff', { headers: basic('ops', 'ops-secret-pw') }), [400]);
        }),
    },
  ];
}

/** Item 7: a wrong password costs the same for an unknown user as for the costliest entry; bytes past the 72nd are not ignored. */
function loginCase(ctx: CaseContext): Case {
  const long = 'p'.repeat(72) + 'right-tail';
  return {
    name: 'login timing and long passwords',
    expected:
      "unknown user's wrong password takes at least half the time of a cost-12 user's (median of 5, fresh addresses); an 82-byte password with another tail 401",
    run: async () => {
      const htpasswd = await htpasswdFile(ctx.work, [
        { name: 'slow', password: 'slow-pw', cost: 12 },
        { name: 'long', password: long, cost: 5 },
      ]);
      return withBerth(
        { config: { version: 0.1, log: { accesslog: { disabled: true } }, auth: { htpasswd: { realm: 'edge', path: htpasswd } } } },
        async (b, problems) => {
          const median = async (user: string, base: number) => {
            const ms: number[] = [];
            for (let i = 0; i < 5; i++) {
              const t = performance.now();
              await fromAddress(`${b.url}/v2/`, { headers: basic(user, 'wrong'), localAddress: `127.0.${base}.${i + 1}` });
              ms.push(performance.now() - t);
            }
            return ms.sort((x, y) => x - y)[2]!;
          };
          const known = await median('slow', 10);
          const unknown = await median('ghost', 11);
          if (unknown < known / 2) problems.push(`unknown user ${unknown.toFixed(0)} ms vs cost-12 user ${known.toFixed(0)} ms: user names can be told apart`);
          const tail = await fromAddress(`${b.url}/v2/`, { headers: basic('long', 'p'.repeat(72) + 'other-tail'), localAddress: '127.0.12.1' });
          expectStatus(problems, '82-byte password with a different tail', tail, [401]);
        },
      );
    },
  };
}

/** Item 8: 413 before 100-continue; schemaVersion the integer 2; descriptor sizes checked against stored blobs. */
function manifestCases(): Case[] {
  return [
    {
      name: '100-continue ordering',
      expected: 'PUT manifest, Content-Length 50 MiB, Expect: 100-continue: the first status line is 413, no 100 before it',
      run: () =>
        withBerth({ config: { version: 0.1, log: { accesslog: { disabled: true } } } }, async (b, problems) => {
          const raw = await rawExchange(
            b.port,
            `PUT /v2/big/app/manifests/v1 HTTP/1.1\r\nHost: berth\r\nContent-Type: ${OCI_MANIFEST}\r\nContent-Length: ${50 * 2 ** 20}\r\nExpect: 100-continue\r\n\r\n`,
            3_000,
          );
          const first = raw.split('\r\n')[0] ?? '';
          if (!/^HTTP\/1\.1 413/.test(first)) problems.push(`first status line: ${first || '(none)'}`);
        }),
    },
    {
      name: 'schemaVersion and size mismatches',
      expected: 'manifest PUT with schemaVersion "2": 400; with 1e999: 400; a layer descriptor whose size differs from the stored blob: 400',
      run: () =>
        withBerth({ config: { version: 0.1, log: { accesslog: { disabled: true } } } }, async (b, problems) => {
          const m = makeManifest(randomBytes(100), [randomBytes(5000)]);
          expectStatus(problems, 'push', await pushWith(b.url, 'shape/app', m, {}), [201]);
          const good = m.bytes.toString();
          const put = (body: string) => call(b.url, 'PUT', '/v2/shape/app/manifests/odd', { body, headers: { 'content-type': OCI_MANIFEST } });
          expectStatus(problems, 'schemaVersion "2"', await put(good.replace('"schemaVersion":2', '"schemaVersion":"2"')), [400]);
          expectStatus(problems, 'schemaVersion 1e999', await put(good.replace('"schemaVersion":2', '"schemaVersion":1e999')), [400]);
          expectStatus(problems, 'layer size 5000 named as 4000', await put(good.replace('"size":5000', '"size":4000')), [400]);
        }),
    },
  ];
}

export function hostileCases(ctx: CaseContext): Case[] {
  return [...crossRepoCases(ctx), badQueryCase(), silentSocketsCase(), hugeReferrersCase(), ...adminCases(ctx), loginCase(ctx), ...manifestCases()];
}
