/** @module cli/warm — `berth warm`: start a warm-up job on a running berth through its admin API and show its progress. */
import cliProgress from 'cli-progress';
import { request } from '../util/undici.js';
import { parseImageReference } from '../oci/image-ref.js';
import { parsePlatform } from '../oci/platform.js';
import type { WarmImage, WarmJob } from '../cache/warm-up.js';
import { formatBytes, formatSeconds, RateMeter } from './progress.js';
import { DEFAULT_SERVER } from './help-defaults.js';

export interface WarmCliOptions {
  readonly server: string;
  /** `os/arch[/variant],...` */
  readonly platform?: string;
  readonly allPlatforms?: boolean;
  readonly pin?: boolean;
  readonly username?: string;
  readonly password?: string;
  /** How often to ask for progress. */
  readonly pollMs?: number;
}

export interface WarmCliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Progress bars on a terminal, plain lines otherwise. */
  readonly tty: boolean;
  readonly now: () => number;
}

/** Exit status: 0 when every image is fully cached, 1 when any is not, 2 for invalid arguments. */
export async function warmCommand(images: string[], opts: WarmCliOptions, io: WarmCliIo): Promise<number> {
  const say = (s: string) => io.stdout.write(`${s}\n`);
  const fail = (s: string, code: number) => {
    io.stderr.write(`berth warm: ${s}\n`);
    return code;
  };
  try {
    for (const i of images) parseImageReference(i);
    if (opts.platform && opts.allPlatforms) return fail('--platform and --all-platforms are both given; use one', 2);
    for (const p of platformList(opts.platform)) parsePlatform(p);
  } catch (err) {
    return fail((err as Error).message, 2);
  }
  let base: string;
  try {
    base = new URL(opts.server).toString().replace(/\/+$/, '');
  } catch {
    return fail(`--server ${opts.server} is not a URL; expected e.g. ${DEFAULT_SERVER}`, 2);
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.username !== undefined) headers['authorization'] = `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64')}`;
  const api = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    try {
      const res = await request(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.body.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = { errors: [{ code: 'INVALID_RESPONSE', message: text.slice(0, 200) }] };
      }
      return { status: res.statusCode, json };
    } catch (err) {
      throw new Error(`cannot reach berth at ${base}: ${(err as Error).message} (is it running? set --server or BERTH_SERVER)`);
    }
  };

  let job: WarmJob;
  try {
    const platforms = platformList(opts.platform);
    const started = await api('POST', '/api/v1/warm', {
      images,
      pin: Boolean(opts.pin),
      allPlatforms: Boolean(opts.allPlatforms),
      ...(platforms.length > 0 ? { platforms } : {}),
    });
    if (started.status !== 202) return fail(errorText(started), 1);
    job = started.json as WarmJob;
    const view = io.tty ? new BarView(io) : new LineView(say, io.now);
    view.update(job);
    while (job.state === 'running') {
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
      const polled = await api('GET', `/api/v1/warm/${encodeURIComponent(job.id)}`);
      if (polled.status !== 200) {
        view.stop();
        return fail(errorText(polled), 1);
      }
      job = polled.json as WarmJob;
      view.update(job);
    }
    view.stop();
  } catch (err) {
    return fail((err as Error).message, 1);
  }
  for (const line of summary(job)) say(line);
  return job.state === 'done' ? 0 : 1;
}

function platformList(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

function errorText(r: { status: number; json: unknown }): string {
  const errors = (r.json as { errors?: Array<{ code?: string; message?: string }> } | null)?.errors;
  const first = errors?.[0];
  return first ? `${first.code ?? r.status}: ${first.message ?? ''}` : `berth answered ${r.status}`;
}

/** The closing lines: what was fetched, what was already cached, what failed and why. */
export function summary(job: WarmJob): string[] {
  const fetched = job.images.filter((i) => i.state === 'done');
  const cached = job.images.filter((i) => i.state === 'cached');
  const failed = job.images.filter((i) => i.state !== 'done' && i.state !== 'cached');
  const bytes = fetched.reduce((n, i) => n + i.bytesFetched, 0);
  const lines = [`${job.images.length} image(s): ${fetched.length} fetched (${formatBytes(bytes)}), ${cached.length} already cached, ${failed.length} failed`];
  for (const i of failed) lines.push(`  failed: ${i.ref}: ${i.error ?? i.state}`);
  return lines;
}

function describe(i: WarmImage): string {
  const platforms = i.platforms.length > 0 ? ` [${i.platforms.join(', ')}]` : '';
  if (i.state === 'failed') return `${i.ref}: failed: ${i.error ?? ''}`;
  if (i.state === 'cached') return `${i.ref}: already cached, ${i.blobsTotal} blobs, ${formatBytes(i.bytesTotal)}${platforms}`;
  return `${i.ref}: ${i.state}, fetched ${formatBytes(i.bytesFetched)} of ${formatBytes(i.bytesTotal)} in ${i.blobsDone}/${i.blobsTotal} blobs${platforms}`;
}

interface View {
  update(job: WarmJob): void;
  stop(): void;
}

/** Not a terminal: one line per state change, and a progress line every few seconds. */
class LineView implements View {
  private readonly last = new Map<string, { state: string; at: number }>();
  private readonly rates = new Map<string, RateMeter>();

  constructor(
    private readonly say: (s: string) => void,
    private readonly now: () => number,
  ) {}

  update(job: WarmJob): void {
    for (const i of job.images) {
      const key = i.ref;
      const prev = this.last.get(key);
      const meter = this.rates.get(key) ?? new RateMeter();
      this.rates.set(key, meter);
      meter.add(this.now(), i.bytesFetched);
      if (prev?.state !== i.state) {
        if (i.state !== 'pending') this.say(i.state === 'running' ? `${i.ref}: fetching` : describe(i));
        this.last.set(key, { state: i.state, at: this.now() });
      } else if (i.state === 'running' && this.now() - prev.at >= 5_000 && i.bytesTotal > 0) {
        const pct = Math.floor((i.bytesDone / i.bytesTotal) * 100);
        this.say(`${i.ref}: ${pct}% ${formatBytes(i.bytesDone)}/${formatBytes(i.bytesTotal)} ${formatBytes(meter.rate())}/s`);
        this.last.set(key, { state: i.state, at: this.now() });
      }
    }
  }

  stop(): void {}
}

/** A terminal: one bar per image with bytes, rate and ETA. */
class BarView implements View {
  private readonly multibar: cliProgress.MultiBar;
  private readonly bars = new Map<string, { bar: cliProgress.SingleBar; meter: RateMeter }>();

  constructor(private readonly io: WarmCliIo) {
    this.multibar = new cliProgress.MultiBar(
      {
        stream: io.stderr,
        format: '{ref} {bar} {percentage}% {done}/{all} {rate}/s ETA {left} {state}',
        barsize: 20,
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  update(job: WarmJob): void {
    for (const i of job.images) {
      let entry = this.bars.get(i.ref);
      if (!entry) {
        entry = { bar: this.multibar.create(Math.max(1, i.bytesTotal), 0, this.payload(i, 0)), meter: new RateMeter() };
        this.bars.set(i.ref, entry);
      }
      entry.meter.add(this.io.now(), i.bytesFetched);
      if (i.bytesTotal > 0) entry.bar.setTotal(i.bytesTotal);
      const done = i.state === 'done' || i.state === 'cached';
      entry.bar.update(done ? Math.max(1, i.bytesTotal) : i.bytesDone, this.payload(i, entry.meter.rate()));
    }
  }

  stop(): void {
    this.multibar.stop();
  }

  private payload(i: WarmImage, rate: number) {
    const state = i.state === 'failed' ? `failed: ${(i.error ?? '').slice(0, 80)}` : i.state === 'cached' ? 'already cached' : i.state;
    const ref = i.ref.length > 32 ? `…${i.ref.slice(-31)}` : i.ref;
    const left = i.bytesTotal - i.bytesDone;
    const eta = i.state !== 'running' ? '-' : left <= 0 ? '0s' : rate > 0 ? formatSeconds(left / rate) : '?';
    return { ref, done: formatBytes(i.bytesDone), all: formatBytes(i.bytesTotal), rate: formatBytes(rate), left: eta, state };
  }
}
