/** @module soak/traffic — the clients of a run: raw HTTP pullers, a skopeo puller, a write-behind pusher and the upstream tag mover. */
import path from 'node:path';
import { Agent } from 'undici';
import { skopeoPull } from '../test/fixtures/clients.js';
import { buildImage, pushImage, type BuiltImage } from '../test/fixtures/image.js';
import { removeDir, sleep } from '../test/fixtures/proc.js';
import { PullError, pullImage, type Cause } from './puller.js';
import type { Kind, Tally } from './tally.js';
import { excuse, type Windows } from './windows.js';

export interface SoakImage {
  /** Repository at the central registry (and at berth, through the default upstream). */
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  readonly bytes: number;
  readonly built: BuiltImage;
}

export interface Creds {
  readonly username: string;
  readonly password: string;
}

/** Everything the traffic loops share for one run. */
export interface TrafficCtx {
  /** Milliseconds since the run started. */
  now(): number;
  readonly berthUrl: string;
  readonly registryUrl: string;
  readonly images: readonly SoakImage[];
  readonly windows: Windows;
  readonly tally: Tally;
  readonly rng: () => number;
  readonly tagttlMs: number;
  readonly work: string;
  readonly pusher: Creds;
  readonly node: Creds;
  readonly admin: Creds;
  readonly log: (msg: string) => void;
  /** The moving tag upstream: every digest it ever named, the current one and when it moved. */
  readonly moving: { repository: string; pool: readonly SoakImage[]; history: Set<string>; current: string; movedAt: number };
  /** References (refKey) berth held completely when it called the upstream down: they must be served during the outage. */
  readonly hot: Set<string>;
  /** Write-behind pushes berth accepted: upstream repository and manifest digest. */
  readonly pushed: Array<{ repository: string; digest: string }>;
  stopping: boolean;
}

/**
 * Retries of one operation after excused interruptions before its failure counts anyway. The
 * excuse itself ends with the window's grace; this only bounds a pathological loop.
 */
const MAX_RETRIES = 20;

/** skopeo's error text, named with the same causes as the raw clients. */
function skopeoCause(err: unknown): Cause {
  // Its own words only: the command line and URLs (`?digest=sha256:…`) would match anything.
  const text = fatalMessage(err);
  if (/connection refused/i.test(text)) return 'refused';
  if (/EOF|connection reset|broken pipe|use of closed network connection/i.test(text)) return 'cut';
  if (/timeout|deadline exceeded/i.test(text)) return 'timeout';
  if (/\b50[234]\b|unavailable/i.test(text)) return 'status-503';
  if (/\b500\b/.test(text)) return 'status-500';
  if (/manifest unknown|blob unknown|\b404\b|not found/i.test(text)) return 'status-404';
  if (/\b401\b|\b403\b|unauthorized|denied/i.test(text)) return 'status-401';
  if (/digest (mismatch|did not match)|does not match|computed digest/i.test(text)) return 'digest';
  return 'skopeo-error';
}

/** skopeo's fatal log message (msg="…", escaped quotes and all), else the whole error text. */
function fatalMessage(err: unknown): string {
  const text = (err as Error).message;
  const at = text.indexOf('msg="');
  return at < 0 ? text : text.slice(at + 5).replace(/\\"/g, '"');
}

/**
 * Runs `op` under the rule of windows.ts: an excused interruption waits for the disruption to
 * end and tries again; anything else is recorded as a failure. Returns undefined on failure.
 */
export async function attempt<T>(ctx: TrafficCtx, kind: Kind, knownCached: () => boolean, op: () => Promise<T>): Promise<T | undefined> {
  for (let tries = 0; ; tries++) {
    const start = ctx.now();
    try {
      return await op();
    } catch (err) {
      const cause = err instanceof PullError ? err.cause : skopeoCause(err);
      const why = tries < MAX_RETRIES ? excuse(ctx.windows, cause, start, ctx.now(), knownCached()) : undefined;
      if (!why) {
        ctx.tally.failed(kind, cause, oneLine(err));
        if (ctx.tally.failures.length <= 20) ctx.log(`FAILED ${kind} ${cause}: ${oneLine(err)}`);
        return undefined;
      }
      ctx.tally.excuse(why, cause);
      await ctx.windows.settled();
      if (ctx.stopping) return undefined;
      // As clients back off, exponentially and not all at the same instant: berth notices a
      // returning upstream at its next probe (every 5 s), so quick retries alone would run out.
      await sleep(Math.min(5_000, 500 * 2 ** tries) + Math.floor(ctx.rng() * 500));
    }
  }
}

/** The gist of an error on one line: skopeo's fatal message rather than its command line. */
function oneLine(err: unknown): string {
  return fatalMessage(err).replace(/\s+/g, ' ').slice(0, 400);
}

/** `repository:tag` or `repository@digest`. */
export function refKey(repository: string, reference: string): string {
  return `${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
}

/** Skewed towards the first images, so some stay warm while the rest churn through the store. */
function pick(ctx: TrafficCtx): SoakImage {
  return ctx.images[Math.floor(ctx.rng() ** 2 * ctx.images.length)]!;
}

/** One raw HTTP client with its own connection pool: tags, digests and the moving tag, in a loop. */
export async function puller(ctx: TrafficCtx): Promise<void> {
  const agent = new Agent({ connections: 4, headersTimeout: 180_000, bodyTimeout: 180_000 });
  try {
    while (!ctx.stopping) {
      const r = ctx.rng();
      if (r < 0.15) {
        const m = ctx.moving;
        const start = ctx.now();
        const got = await attempt(
          ctx,
          'pull-moving',
          () => false,
          () => pullImage(ctx.berthUrl, m.repository, 'latest', m.history, agent),
        );
        if (got) {
          ctx.tally.succeeded('pull-moving', got.bytes);
          const late = got.manifestDigest !== m.current && start - m.movedAt > ctx.tagttlMs + 10_000 && !ctx.windows.overlapped('outage', start, ctx.now());
          if (late) ctx.tally.staleTags++;
        }
        continue;
      }
      const img = pick(ctx);
      const byDigest = r < 0.45;
      const kind: Kind = byDigest ? 'pull-digest' : 'pull-tag';
      const ref = byDigest ? img.digest : img.tag;
      const got = await attempt(
        ctx,
        kind,
        () => ctx.hot.has(refKey(img.repository, ref)),
        () => pullImage(ctx.berthUrl, img.repository, ref, new Set([img.digest]), agent),
      );
      if (got) ctx.tally.succeeded(kind, got.bytes);
    }
  } finally {
    await agent.close();
  }
}

/** A real client as a separate process: skopeo copies an image out of berth and re-hashes every blob. */
export async function skopeoPuller(ctx: TrafficCtx): Promise<void> {
  for (let n = 0; !ctx.stopping; n++) {
    const img = pick(ctx);
    const out = path.join(ctx.work, `skopeo-${n}`);
    const key = refKey(img.repository, ctx.rng() < 0.5 ? img.tag : img.digest);
    const ref = `${new URL(ctx.berthUrl).host}/${key}`;
    const got = await attempt(
      ctx,
      'pull-skopeo',
      () => ctx.hot.has(key),
      async () => {
        await removeDir(out);
        const pulled = await skopeoPull(ref, out, { creds: ctx.node, timeoutMs: 180_000 });
        if (pulled.manifestDigest !== img.digest) throw new PullError('wrong-tag', ref, `answered ${pulled.manifestDigest}`);
        return pulled;
      },
    );
    await removeDir(out);
    if (got) ctx.tally.succeeded('pull-skopeo', img.bytes);
  }
}

/** Pushes a fresh small image through the write-behind upstream every `everyMs`, then pulls it back. */
export async function pusher(ctx: TrafficCtx, everyMs: number): Promise<void> {
  const agent = new Agent({ connections: 2, headersTimeout: 180_000, bodyTimeout: 180_000 });
  try {
    for (let n = 0; !ctx.stopping; n++) {
      const img = await buildImage({ layers: 2, layerSize: 256 * 1024, tag: 'v1' });
      try {
        const repository = `soak/push${n}`;
        const ok = await attempt(
          ctx,
          'push',
          () => true,
          () => pushImage(img, ctx.berthUrl, `behind/${repository}:v1`, ctx.pusher),
        );
        if (ok) {
          ctx.tally.succeeded('push', 0);
          ctx.pushed.push({ repository, digest: img.manifestDigest });
          // Queued content is kept from eviction until replicated, and berth serves it meanwhile.
          const back = await attempt(
            ctx,
            'pull-pushed',
            () => true,
            () => pullImage(ctx.berthUrl, `behind/${repository}`, img.manifestDigest, new Set([img.manifestDigest]), agent),
          );
          if (back) ctx.tally.succeeded('pull-pushed', back.bytes);
        }
      } finally {
        await img.remove();
      }
      await pause(ctx, everyMs);
    }
  } finally {
    await agent.close();
  }
}

/** Moves the upstream tag through its pool every `everyMs` (not during an outage: the registry is down). */
export async function tagMover(ctx: TrafficCtx, everyMs: number): Promise<void> {
  const m = ctx.moving;
  for (let k = 1; !ctx.stopping; k++) {
    await pause(ctx, everyMs);
    if (ctx.stopping || ctx.windows.isOpen('outage')) continue;
    const next = m.pool[k % m.pool.length]!;
    // Allowed from the moment it may become visible.
    m.history.add(next.digest);
    try {
      await pushImage(next.built, ctx.registryUrl, `${m.repository}:latest`, ctx.admin);
      m.current = next.digest;
      m.movedAt = ctx.now();
    } catch (err) {
      ctx.log(`tag move skipped: ${oneLine(err)}`);
    }
  }
}

/** Sleeps up to `ms`, waking early when the run stops. */
export async function pause(ctx: TrafficCtx, ms: number): Promise<void> {
  const until = ctx.now() + ms;
  while (!ctx.stopping && ctx.now() < until) await sleep(Math.min(500, until - ctx.now()));
}
