/** @module cli/transfer-bar — one progress bar (bytes, rate, ETA) for `berth export` and `berth import`; silent off a terminal or with --quiet. */
import cliProgress from 'cli-progress';
import { formatBytes, formatSeconds, RateMeter } from './progress.js';

export interface TransferBar {
  /** Bytes moved (or skipped as already there) since the last call. */
  add(bytes: number, label?: string): void;
  stop(): void;
}

const SILENT: TransferBar = { add: () => undefined, stop: () => undefined };

/** A bar on `stream` when it is a terminal and not quiet; otherwise nothing is drawn. */
export function transferBar(total: number, opts: { stream: NodeJS.WritableStream; tty: boolean; quiet: boolean; now: () => number }): TransferBar {
  if (!opts.tty || opts.quiet) return SILENT;
  const bar = new cliProgress.SingleBar(
    {
      stream: opts.stream,
      format: '{bar} {percentage}% {done}/{all} {rate}/s ETA {left} {label}',
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const meter = new RateMeter();
  let done = 0;
  const payload = (label: string) => {
    const rate = meter.rate();
    const left = total - done;
    return {
      done: formatBytes(done),
      all: formatBytes(total),
      rate: formatBytes(rate),
      left: left <= 0 ? '0s' : rate > 0 ? formatSeconds(left / rate) : '?',
      label: label.length > 40 ? `…${label.slice(-39)}` : label,
    };
  };
  bar.start(Math.max(1, total), 0, payload(''));
  return {
    add(bytes, label = '') {
      done += bytes;
      meter.add(opts.now(), done);
      bar.update(Math.min(done, Math.max(1, total)), payload(label));
    },
    stop() {
      bar.stop();
    },
  };
}

/** Passes chunks through, counting each on the bar. */
export async function* counted(source: AsyncIterable<Uint8Array>, bar: TransferBar, label: string): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    bar.add(chunk.length, label);
    yield chunk;
  }
}
