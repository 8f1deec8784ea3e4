/** @module bench/hostile-kit — what the named cases of `npm run hostile` share: the case shape, a berth per case, checks that collect what went wrong. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { startBerth, type Berth, type BerthOptions } from '../test/fixtures/berth.js';
import { call, digestOf, makeManifest, uploadBlob, OCI_MANIFEST, type Answer, type TestManifest } from '../test/fixtures/oci-http.js';
import { basic } from '../test/fixtures/oci-call.js';

/** One named case: what issue 21 says berth must do, and a run that says what it did. */
export interface Case {
  name: string;
  expected: string;
  run(): Promise<string[]>;
}

export interface Outcome {
  name: string;
  expected: string;
  pass: boolean;
  /** What did not hold (empty when the case passed). */
  problems: string[];
  seconds: number;
}

/** Runs each case in turn; an exception is a failure of that case, never of the whole run. */
export async function runCases(cases: Case[], log: (msg: string) => void): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const c of cases) {
    const t = performance.now();
    let problems: string[];
    try {
      problems = await c.run();
    } catch (err) {
      problems = [`threw: ${(err as Error).message.split('\n').slice(0, 3).join(' | ')}`];
    }
    const o = { name: c.name, expected: c.expected, pass: problems.length === 0, problems, seconds: (performance.now() - t) / 1000 };
    log(`${o.pass ? 'pass' : 'FAIL'} ${c.name} (${o.seconds.toFixed(1)} s)${o.pass ? '' : `: ${problems.join('; ')}`}`);
    out.push(o);
  }
  return out;
}

/** Starts a berth, hands it to `fn`, stops it; a crash or an uncaught error in its log is one more problem. */
export async function withBerth(opts: BerthOptions, fn: (b: Berth, problems: string[]) => Promise<void>): Promise<string[]> {
  const problems: string[] = [];
  const b = await startBerth(opts);
  try {
    await fn(b, problems);
  } catch (err) {
    // Keep what was found before the step that threw.
    problems.push(`threw: ${(err as Error).message.split('\n').slice(0, 3).join(' | ')}`);
  } finally {
    await b.stop().catch((err: unknown) => problems.push(`berth: ${(err as Error).message.split('\n').slice(0, 2).join(' ')}`));
  }
  return problems;
}

/** Records `what` unless the answer has one of the statuses (and, when given, the OCI code). */
export function expectStatus(problems: string[], what: string, a: Pick<Answer, 'status' | 'body'>, statuses: number[], code?: string): void {
  let gotCode: string | undefined;
  try {
    gotCode = (JSON.parse(a.body.toString()) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code;
  } catch {
    gotCode = undefined;
  }
  if (!statuses.includes(a.status) || (code !== undefined && gotCode !== code)) {
    const why = a.status === 0 || a.status >= 500 ? ` "${a.body.subarray(0, 160).toString()}"` : '';
    problems.push(`${what}: ${a.status}${gotCode ? ` ${gotCode}` : ''}${why} (want ${statuses.join('/')}${code ? ` ${code}` : ''})`);
  }
}

/** A request that must answer within `ms`; a hang becomes status 0 instead of stalling the run. */
export async function timed(
  base: string,
  method: string,
  p: string,
  opts: { headers?: Record<string, string>; body?: Buffer | string } = {},
  ms = 5_000,
): Promise<Answer> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<Answer>((resolve) => {
    timer = setTimeout(
      () => resolve({ status: 0, headers: {}, body: Buffer.from('no answer (hang)'), json: () => ({}) as never, header: () => undefined }),
      ms,
    );
  });
  try {
    return await Promise.race([call(base, method, p, opts), hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** htpasswd users hashed at the given bcrypt cost (bcryptjs: long passwords go in as they are). */
export async function htpasswdFile(dir: string, users: Array<{ name: string; password: string; cost: number }>): Promise<string> {
  const file = path.join(dir, `htpasswd-${users.map((u) => u.name).join('-')}`);
  const lines = await Promise.all(users.map(async (u) => `${u.name}:${await bcrypt.hash(u.password, u.cost)}`));
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

export const ALICE = { name: 'alice', password: 'alice-pw' };
export const BOB = { name: 'bob', password: 'bob-pw' };
export const aliceAuth = (): Record<string, string> => basic(ALICE.name, ALICE.password);
export const bobAuth = (): Record<string, string> => basic(BOB.name, BOB.password);

/** alice may do anything in alice/*, bob in bob/*: the repositories one of them must never read of the other. */
export const RULES = [
  { users: ['alice'], repositories: ['alice/*'], actions: ['*'] },
  { users: ['bob'], repositories: ['bob/*'], actions: ['*'] },
];

/** Pushes a manifest with its blobs, with credentials; returns the manifest PUT's answer. */
export async function pushWith(base: string, repo: string, m: TestManifest, headers: Record<string, string>, reference = 'v1'): Promise<Answer> {
  for (const b of [m.config, ...m.layers]) await uploadBlob(base, repo, b.data, 'sha256', headers);
  return call(base, 'PUT', `/v2/${repo}/manifests/${reference}`, { body: m.bytes, headers: { ...headers, 'content-type': OCI_MANIFEST } });
}

/** A manifest document naming the given blobs by digest and size, as a hostile client writes it. */
export function manifestNaming(
  config: { digest: string; size: number },
  layers: Array<{ digest: string; size: number }>,
  extra: Record<string, unknown> = {},
): Buffer {
  const d = (x: { digest: string; size: number }, mediaType: string) => ({ mediaType, digest: x.digest, size: x.size });
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: d(config, 'application/vnd.oci.image.config.v1+json'),
      layers: layers.map((l) => d(l, 'application/vnd.oci.image.layer.v1.tar')),
      ...extra,
    }),
  );
}

export { digestOf, makeManifest };
