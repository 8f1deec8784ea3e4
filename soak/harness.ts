/** @module soak/harness — one soak run: a real central registry, real berth processes, mixed traffic and disruptions on a schedule, then the figures. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDuration, parseSize } from '../src/config/units.js';
import { OPEN_FILES_IDLE_MS } from '../src/storage/open-files.js';
import { startBerth, type Berth } from '../test/fixtures/berth.js';
import { buildImage, pushImage } from '../test/fixtures/image.js';
import { makeTempDir, removeDir, run, sleep } from '../test/fixtures/proc.js';
import { startRegistry, type Registry } from '../test/fixtures/registry.js';
import { PullError, pullImage } from './puller.js';
import { range, sample, type Sample } from './probe.js';
import { summarize, type SoakReport } from './report.js';
import { Tally } from './tally.js';
import { attempt, pause, puller, pusher, refKey, skopeoPuller, tagMover, type SoakImage, type TrafficCtx } from './traffic.js';
import { cachedWhenDown, drainQueue, fromBerth, fsckStore, replicatedManifests } from './finish.js';
import { excuse, Windows } from './windows.js';
import { Agent } from 'undici';

export interface SoakOptions {
  readonly durationMs: number;
  /** Raw HTTP pullers (a skopeo puller, a pusher and the tag mover run besides). */
  readonly clients: number;
  readonly images: number;
  readonly layers: number;
  readonly layerBytes: number;
  /** storage.maxsize, smaller than the working set. */
  readonly maxsize: string;
  readonly tagttl: string;
  /** One outage, one SIGTERM restart and one SIGKILL restart per cycle. */
  readonly cycleMs: number;
  readonly seed: number;
  readonly log: (msg: string) => void;
  /** Keep the work directory (berth logs, store) for a look afterwards. */
  readonly keep: boolean;
}

/** The cycle that suits a run: one of each disruption in a short run, one every few minutes in a long one. */
export function defaultCycleMs(durationMs: number): number {
  return Math.min(durationMs, Math.max(90_000, Math.min(180_000, durationMs / 10)));
}

export const DEFAULTS: Omit<SoakOptions, 'durationMs' | 'log' | 'cycleMs'> = {
  // 60 MiB of images through 32 MiB: eviction all the time, yet room for the images in flight.
  clients: 6,
  images: 10,
  layers: 3,
  layerBytes: 2 * 1024 * 1024,
  maxsize: '32MiB',
  tagttl: '2s',
  seed: 1,
  keep: false,
};

/** A small deterministic PRNG (mulberry32), so a seed replays the same choices. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ACCOUNT = { username: 'berth', password: 'berth-soak-upstream' };
const ADMIN = { username: 'admin', password: 'admin-soak' };
const PUSHER = { username: 'pusher', password: 'pusher-soak' };
/** The skopeo client logs in, as nodes do with a pull secret (skopeo gives up on a 401 to /v2/ otherwise). */
const NODE = { username: 'node', password: 'node-soak' };

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const now = () => Date.now() - started;
  const { log } = opts;
  const work = await makeTempDir('berth-soak-');
  const cleanups: Array<() => Promise<void>> = [];
  let registry: Registry | undefined;
  const lifetimes: Berth[] = [];
  let stopTraffic = (): void => undefined;
  try {
    registry = await startRegistry({ auth: 'token', users: { [ACCOUNT.username]: ACCOUNT.password, [ADMIN.username]: ADMIN.password } });
    log(`central registry on ${registry.url}; building and pushing ${opts.images} images of ${opts.layers} x ${(opts.layerBytes / 2 ** 20).toFixed(1)} MiB`);
    const images: SoakImage[] = [];
    for (let i = 0; i < opts.images; i++) {
      const built = await buildImage({ layers: opts.layers, layerSize: opts.layerBytes, tag: 'v1' });
      cleanups.push(() => built.remove());
      await pushImage(built, registry.url, `soak/img${i}:v1`, ADMIN);
      images.push({ repository: `soak/img${i}`, tag: 'v1', digest: built.manifestDigest, bytes: built.totalSize, built });
    }
    const pool = images.slice(0, Math.min(3, images.length));
    for (const [k, img] of pool.entries()) await pushImage(img.built, registry.url, `soak/moving:p${k}`, ADMIN);
    await pushImage(pool[0]!.built, registry.url, 'soak/moving:latest', ADMIN);

    const htpasswd = path.join(work, 'htpasswd');
    const entries = await Promise.all([PUSHER, NODE].map(async (u) => (await run('htpasswd', ['-Bbn', u.username, u.password])).stdout.trim()));
    await writeFile(htpasswd, `${entries.join('\n')}\n`);
    const upstream = { remoteurl: registry.url, username: ACCOUNT.username, password: ACCOUNT.password, tagttl: opts.tagttl };
    const config = {
      version: 0.1,
      storage: { maxsize: opts.maxsize, lowwatermark: 0.8 },
      // Pushes through write-behind forward with berth's own account, so clients must log in to push.
      auth: {
        htpasswd: { realm: 'berth', path: htpasswd },
        rules: [
          { users: ['anonymous', NODE.username], repositories: ['*'], actions: ['pull'] },
          { users: [PUSHER.username], repositories: ['*'], actions: ['*'] },
        ],
      },
      // The soak reads the admin API from this host (which images are cached when the centre is down).
      admin: { trustloopback: true },
      upstreams: [
        { name: 'central', ...upstream, prefix: 'central', default: true },
        { name: 'behind', ...upstream, prefix: 'behind', pushmode: 'write-behind' },
      ],
    };
    let berth = await startBerth({ config });
    lifetimes.push(berth);
    const root = berth.root;
    const port = berth.port;
    const idleStart = await sample(berth.service.pid, now() / 1000);
    log(
      `berth on ${berth.url} (pid ${berth.service.pid}), store ${opts.maxsize} for a working set of ${(images.reduce((n, i) => n + i.bytes, 0) / 2 ** 20).toFixed(0)} MiB; running for ${Math.round(opts.durationMs / 1000)} s`,
    );

    const windows = new Windows(now);
    const tally = new Tally(now);
    const ctx: TrafficCtx = {
      now,
      berthUrl: berth.url,
      registryUrl: registry.url,
      images,
      windows,
      tally,
      rng: prng(opts.seed),
      tagttlMs: parseDuration(opts.tagttl),
      work,
      pusher: PUSHER,
      node: NODE,
      admin: ADMIN,
      log,
      moving: { repository: 'soak/moving', pool, history: new Set([pool[0]!.digest]), current: pool[0]!.digest, movedAt: 0 },
      hot: new Set(),
      pushed: [],
      stopping: false,
    };
    stopTraffic = () => {
      ctx.stopping = true;
    };
    const samples: Sample[] = [];
    const sampler = (async () => {
      while (!ctx.stopping) {
        const s = await sample(berth.service.pid, now() / 1000);
        if (s) samples.push(s);
        await pause(ctx, 5_000);
      }
    })();
    const progress = (async () => {
      while (!ctx.stopping) {
        await pause(ctx, 30_000);
        const last = samples.at(-1);
        log(
          `t=${Math.round(now() / 1000)}s pulls=${tally.pulls} pushes=${tally.pushes} failed=${tally.failures.length} excused=${[...tally.excused.values()].reduce((a, b) => a + b, 0)} rss=${last ? (last.rssBytes / 2 ** 20).toFixed(0) : '?'}MiB fds=${last?.fds ?? '?'}`,
        );
      }
    })();

    const hotAgent = new Agent({ connections: 2 });
    /** Before an outage: an ordinary pull. During one: no waiting for its end (this loop ends it). */
    const pullHot = async (during: boolean) => {
      const img = images[0]!;
      for (const ref of [img.tag, img.digest]) {
        const pull = () => pullImage(berth.url, img.repository, ref, new Set([img.digest]), hotAgent);
        if (!during) {
          const got = await attempt(ctx, 'pull-hot', () => false, pull);
          if (got) tally.succeeded('pull-hot', got.bytes);
          continue;
        }
        try {
          tally.succeeded('pull-hot', (await pull()).bytes);
        } catch (err) {
          const cause = err instanceof PullError ? err.cause : 'cut';
          const why = excuse(windows, cause, now(), now(), ctx.hot.has(refKey(img.repository, ref)));
          if (why) tally.excuse(why, cause);
          else tally.failed('pull-hot', cause, (err as Error).message);
        }
      }
    };
    const outage = async (ms: number) => {
      // Pulled just before, so there is cached content to demand during the outage.
      await pullHot(false);
      windows.begin('outage');
      log(`t=${Math.round(now() / 1000)}s upstream outage for ${Math.round(ms / 1000)} s`);
      await registry!.down();
      // Once berth calls the upstream down it evicts none of its content (see docs/operations.md), so
      // what it holds completely at that moment must be served until the outage ends.
      for (const key of await cachedWhenDown(berth.url, images, ms / 2)) ctx.hot.add(key);
      log(`t=${Math.round(now() / 1000)}s berth holds ${ctx.hot.size} image references completely; they must be served during the outage`);
      await pullHot(true);
      await pause(ctx, ms - (now() - windows.lastStart('outage')));
      await registry!.up();
      windows.end('outage');
      ctx.hot.clear();
    };
    const restart = async (signal: 'SIGTERM' | 'SIGKILL') => {
      windows.begin('restart', signal);
      log(`t=${Math.round(now() / 1000)}s berth restart (${signal}, pid ${berth.service.pid})`);
      await berth.kill(signal);
      berth = await startBerth({ config, root, port });
      lifetimes.push(berth);
      windows.end('restart');
    };
    const schedule = (async () => {
      for (let cycle = 0; (cycle + 1) * opts.cycleMs <= opts.durationMs + 1; cycle++) {
        const base = cycle * opts.cycleMs;
        const at = async (f: number) => pause(ctx, base + f * opts.cycleMs - now());
        await at(0.25);
        if (!ctx.stopping) await outage(Math.min(10_000, opts.cycleMs / 10));
        await at(0.5);
        if (!ctx.stopping) await restart('SIGTERM');
        await at(0.75);
        if (!ctx.stopping) await restart('SIGKILL');
      }
    })();

    const loops = [...Array.from({ length: opts.clients }, () => puller(ctx)), skopeoPuller(ctx), pusher(ctx, 8_000), tagMover(ctx, 12_000)];
    await sleep(opts.durationMs);
    await schedule;
    ctx.stopping = true;
    await Promise.all([...loops, sampler, progress]);
    await hotAgent.close();
    log(`traffic stopped at t=${Math.round(now() / 1000)}s; waiting for the write-behind queue to drain`);

    // Idle means past the descriptors berth keeps for warm blobs on purpose: each closes once
    // unused for OPEN_FILES_IDLE_MS, found by a sweep that comes that often (so within two).
    await sleep(2 * OPEN_FILES_IDLE_MS + 2_000);
    const idleEnd = await sample(berth.service.pid, now() / 1000);
    const drained = await drainQueue(berth, 180_000);
    const replicated = await replicatedManifests(registry);
    const notReplicated = ctx.pushed.filter((p) => !replicated.has(`${p.repository}@${p.digest}`));
    await berth.kill('SIGTERM');
    const fsck = await fsckStore(berth.configFile);
    const upstreamBytes = (await registry.requests()).filter((r) => fromBerth(r) && r.method === 'GET').reduce((n, r) => n + r.written, 0);
    const logs = (await Promise.all(lifetimes.map((b) => b.logLines()))).flat();
    return summarize({
      durationMs: now(),
      opts,
      tally,
      samples,
      idleStart,
      idleEnd,
      windows,
      drained,
      notReplicated,
      fsck,
      upstreamBytes,
      workingSetBytes: images.reduce((n, i) => n + i.bytes, 0),
      cutLines: logs.filter((l) => l['msg'] === 'blob response cut short').length,
      errorLines: logs.filter((l) => Number(l['level']) >= 50).length,
      lifetimes: lifetimes.length,
      rssRange: range(samples.map((s) => s.rssBytes)),
      fdRange: range(samples.map((s) => s.fds)),
      maxsizeBytes: parseSize(opts.maxsize),
    });
  } finally {
    // Also when something threw: the traffic loops end at their next turn.
    stopTraffic();
    for (const b of lifetimes) await b.service.stop(5_000).catch(() => undefined);
    await registry?.stop().catch(() => undefined);
    for (const c of cleanups) await c().catch(() => undefined);
    if (opts.keep) log(`kept ${work} and the berth directories: ${lifetimes.map((b) => b.dir).join(' ')}`);
    else {
      await removeDir(work);
      for (const b of lifetimes) await b.cleanup().catch(() => undefined);
    }
  }
}
