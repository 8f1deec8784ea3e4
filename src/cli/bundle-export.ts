/** @module cli/bundle-export — `berth export`: images with their platforms, signatures and referrers written as an OCI image layout (a directory or one tar). */
import { readFile, stat } from 'node:fs/promises';
import { bundleBlobs, leftOut, planImage, writeBundle, type ExportSource, type Planned } from '../cache/bundle-build.js';
import { parseImageReference } from '../oci/image-ref.js';
import type { Platform } from '../oci/platform.js';
import { isTarPath } from '../storage/oci-layout.js';
import { openLayoutWriter } from '../storage/layout-writer.js';
import { openLayoutReader } from '../storage/oci-layout-reader.js';
import { FileHasher } from '../util/file-hasher.js';
import { availableParallelism } from 'node:os';
import { formatBytes } from './progress.js';
import { counted, transferBar } from './transfer-bar.js';

export interface ExportOptions {
  readonly output: string;
  readonly platforms: readonly Platform[] | 'all';
  /** An earlier bundle, a JSON state file listing the blobs a site holds, or `site:NAME` (the hub's list, via siteHeld). */
  readonly since?: string;
  /** The blobs a site last told the hub it holds (`--since site:NAME` with `--server HUB`). */
  readonly siteHeld?: (site: string) => Promise<Set<string>>;
  readonly quiet: boolean;
}

export interface BundleIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly stderr: NodeJS.WritableStream;
  readonly tty: boolean;
  readonly now: () => number;
}

/** Exit status: 0 when every image went into the bundle whole, 1 naming each that did not. */
export async function exportBundle(source: ExportSource, images: readonly string[], opts: ExportOptions, io: BundleIo): Promise<number> {
  const site = opts.since?.startsWith('site:') && opts.siteHeld ? opts.since.slice('site:'.length) : undefined;
  const held = opts.since === undefined ? new Set<string>() : site !== undefined ? await opts.siteHeld!(site) : await heldBy(opts.since);
  const failures: string[] = [];
  const plans: Planned[] = [];
  for (const text of images) {
    try {
      plans.push(await planImage(source, parseImageReference(text), opts.platforms));
    } catch (err) {
      failures.push(`${text}: ${(err as Error).message}`);
    }
  }
  if (plans.length === 0) {
    for (const f of failures) io.err(`berth export: not exported: ${f}`);
    io.err(`berth export: no image to export; ${opts.output} was not written`);
    return 1;
  }
  const blobs = bundleBlobs(plans, held);
  const total = [...blobs.values()].reduce((n, b) => n + b.d.size, 0);
  // From a store on this machine: a directory's blobs are whole files copied by the kernel and hashed on
  // other threads; a tar's are copied into their places by those threads, hashed as they pass.
  const hasher = new FileHasher();
  const writer = await openLayoutWriter(opts.output, hasher);
  const bar = transferBar(total, { stream: io.stderr, tty: io.tty, quiet: opts.quiet, now: io.now });
  let result: { written: number; skipped: number };
  try {
    const tar = isTarPath(opts.output);
    result = await writeBundle(
      source,
      plans,
      blobs,
      writer,
      {
        // A tar file takes its blobs at reserved places, so it copies several at once as a directory does.
        window: Math.max(2, Math.min(4, availableParallelism()) + 1),
        tar,
        body: (d, body) => counted(body, bar, d.digest.slice(0, 19)),
        skipped: (d) => bar.add(d.size),
        copied: (d) => bar.add(d.size, d.digest.slice(0, 19)),
        hasher,
      },
      failures,
    );
  } catch (err) {
    bar.stop();
    await writer.abort();
    io.err(`berth export: ${(err as Error).message}${isTarPath(opts.output) ? `; ${opts.output} was not written` : ''}`);
    return 1;
  } finally {
    await hasher.close();
  }
  bar.stop();
  const left = held.size > 0 ? `, ${leftOut(plans, held)} left out (held by --since)` : '';
  io.out(
    `exported ${plans.length} image(s) to ${opts.output}: ${result.written} blob(s) written (${formatBytes(total)})${result.skipped ? `, ${result.skipped} already there` : ''}${left}`,
  );
  for (const f of failures) io.err(`berth export: not exported: ${f}`);
  return failures.length === 0 ? 0 : 1;
}

/**
 * Digests a site holds already: every blob of an earlier bundle (directory or tar), or the
 * `blobs` list of a JSON state file (`berth ls --json`).
 */
export async function heldBy(path: string): Promise<Set<string>> {
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new Error(`--since ${path} does not exist`);
  if (s.isFile() && path.toLowerCase().endsWith('.json')) {
    const doc = JSON.parse(await readFile(path, 'utf8')) as { blobs?: unknown };
    if (!Array.isArray(doc.blobs)) throw new Error(`--since ${path} has no "blobs" list (write one with berth ls --json)`);
    return new Set(doc.blobs.map((b) => (typeof b === 'string' ? b : String((b as { digest?: unknown }).digest))));
  }
  const held = new Set<string>();
  for await (const b of (await openLayoutReader(path)).blobs()) held.add(b.digest);
  return held;
}
