/** @module bench/anchors — the servers berth is measured against: distribution 2.8 and 3, and nginx with sendfile serving the same blob files (the machine's limit) */
import { access, readFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { availableParallelism } from 'node:os';
import { LOOPBACK, freePort, makeTempDir, removeDir, run } from '../test/fixtures/proc.js';
import { type CacheUnderTest, type TlsPair, startBerthCache, startDistributionProxy } from './caches.js';
import { nginxPreamble, nginxTempPaths, runNginx } from '../test/fixtures/nginx.js';

/** `berth` serves from one process, `berth-workers` from one worker per core (a count: `auto` is one process on two cores). */
export type AnchorKind = 'berth' | 'berth-workers' | 'distribution-2.8' | 'distribution-3' | 'nginx';

export interface ServerUnderTest extends Omit<CacheUnderTest, 'kind'> {
  name: AnchorKind;
  /** Whether it must be primed through its own pull-through path before warm serving. */
  proxy: boolean;
}

/** Every pid of the process tree under pid (nginx's workers, say), the root included. */
export async function treePids(pid: number): Promise<number[]> {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i]!;
    const kids = await readFile(`/proc/${p}/task/${p}/children`, 'utf8').catch(() => '');
    for (const k of kids.split(' ').filter(Boolean)) out.push(Number(k));
  }
  return out;
}

/** A self-signed ECDSA P-256 certificate for 127.0.0.1, which curl is then told to trust. */
export async function makeCert(dir: string): Promise<TlsPair> {
  const certificate = path.join(dir, 'tls.crt');
  const key = path.join(dir, 'tls.key');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    `subjectAltName=IP:${LOOPBACK}`,
    '-keyout',
    key,
    '-out',
    certificate,
  ]);
  return { certificate, key };
}

async function executable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** Finds a command on PATH (nginx lives in /usr/sbin, which a non-root PATH may lack). */
async function which(cmd: string): Promise<string | undefined> {
  for (const dir of [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/sbin']) {
    const f = path.join(dir, cmd);
    if (dir && (await executable(f))) return f;
  }
  return undefined;
}

/** nginx serving /v2/<name>/blobs/sha256:<hex> straight from an OCI layout's blobs/sha256 folder, sendfile on. */
async function startNginx(blobDir: string, tls: TlsPair | undefined): Promise<Omit<CacheUnderTest, 'kind'>> {
  const bin = await which('nginx');
  if (!bin) throw new Error('nginx not installed (apt-get install nginx-light); skipped');
  const dir = await makeTempDir('berth-bench-nginx');
  const port = await freePort();
  const q = JSON.stringify;
  const conf = `${nginxPreamble(dir, 'auto')}
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  ${nginxTempPaths(dir)}
  server {
    listen ${LOOPBACK}:${port}${tls ? ' ssl' : ''};
    ${tls ? `ssl_certificate ${q(tls.certificate)}; ssl_certificate_key ${q(tls.key)};` : ''}
    location ~ "^/v2/.+/blobs/sha256:([0-9a-f]{64})$" { default_type application/octet-stream; alias ${q(`${blobDir}/$1`)}; }
    location / { return 200 "{}"; }
  }
}
`;
  const url = `${tls ? 'https' : 'http'}://${LOOPBACK}:${port}`;
  const svc = await runNginx(bin, dir, conf, `${url}/v2/`);
  const logFile = path.join(dir, 'nginx.log');
  return {
    url,
    pid: svc.pid,
    dir,
    logFile,
    stop: async (keep = false) => {
      await svc.stop(5_000);
      if (!keep) await removeDir(dir);
    },
  };
}

/** The environment variable naming a distribution v3.0.0 binary (see docs/performance.md). */
export const DISTRIBUTION3_ENV = 'BERTH_BENCH_DISTRIBUTION3';
/** Where scripts/build-distribution3.sh builds it, used when the variable is unset. */
const DISTRIBUTION3_BUILT = path.join('.tools', 'distribution3', 'registry');

/** The distribution 3.0.0 binary: BERTH_BENCH_DISTRIBUTION3, else the one scripts/build-distribution3.sh built; or why there is none. */
export async function distribution3(): Promise<{ bin: string; skipped?: undefined } | { bin?: undefined; skipped: string }> {
  const named = process.env[DISTRIBUTION3_ENV];
  if (named) return (await executable(named)) ? { bin: named } : { skipped: `${DISTRIBUTION3_ENV}=${named} is not an executable; skipped` };
  if (await executable(DISTRIBUTION3_BUILT)) return { bin: path.resolve(DISTRIBUTION3_BUILT) };
  return { skipped: `${DISTRIBUTION3_ENV} is not set and scripts/build-distribution3.sh has not built ${DISTRIBUTION3_BUILT}; skipped` };
}

/** Starts one server; throws an Error whose message says why when it is not available here. */
export async function startAnchor(name: AnchorKind, remoteurl: string, blobDir: string, tls: TlsPair | undefined): Promise<ServerUnderTest> {
  if (name === 'berth') return { ...(await startBerthCache(remoteurl, { tls, workers: 1 })), name, proxy: true };
  if (name === 'berth-workers') return { ...(await startBerthCache(remoteurl, { tls, workers: Math.max(2, availableParallelism()) })), name, proxy: true };
  if (name === 'distribution-2.8') return { ...(await startDistributionProxy(remoteurl, { tls })), name, proxy: true };
  if (name === 'distribution-3') {
    const { bin, skipped } = await distribution3();
    if (!bin) throw new Error(skipped);
    return { ...(await startDistributionProxy(remoteurl, { tls, bin })), name, proxy: true };
  }
  return { ...(await startNginx(blobDir, tls)), name, proxy: false };
}
