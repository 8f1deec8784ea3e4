/**
 * @module fleet/hub-bundle — a site's held blobs arriving (PUT /api/v1/fleet/held/<site>) and the
 * delta bundle the hub prepares for it (GET /api/v1/sites/<site>/bundle): the images asked for,
 * through the hub's own cache, minus what the site last said it holds, streamed as one tar.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { bundleBlobs, leftOut, planImage, writeBundle, type ExportSource, type Planned } from '../cache/bundle-build.js';
import { badRequest, conflict, manifestUnknown, nameInvalid, nameUnknown, overloaded, unsupported } from '../oci/error-catalogue.js';
import { isOciError } from '../oci/errors.js';
import { parseImageReference, type ImageReference } from '../oci/image-ref.js';
import { DEFAULT_PLATFORMS, parsePlatform, type Platform } from '../oci/platform.js';
import type { HeldStore } from '../ports/hub-state.js';
import { openTarStreamWriter } from '../storage/oci-layout.js';
import { heldDigests, readHeld } from './held.js';

/** Images in one bundle: each is planned (its manifests read) before the first byte goes out. */
export const MAX_BUNDLE_IMAGES = 100;
/** Bundles a hub builds at once: each holds a site's held set (up to 8 MiB) and reads blobs through the hub's cache. */
export const MAX_BUNDLES_AT_ONCE = 4;

export interface BundleDeps {
  readonly known: (site: string) => boolean;
  readonly state: HeldStore;
  /** The hub's cache (absent: the hub has no upstream to read images from). */
  readonly source?: ExportSource;
  readonly logger: Logger;
  readonly now: () => number;
  /** Bundles being built now, by this hub (bounded by MAX_BUNDLES_AT_ONCE). */
  readonly building: { count: number };
}

/** Matches the bundle path; the site's name still percent-encoded. */
export const BUNDLE_PATH = /^\/api\/v1\/sites\/([^/]+)\/bundle$/;
export const HELD_PATH = /^\/api\/v1\/fleet\/held\/([^/]+)$/;
export const SITE_HELD_PATH = /^\/api\/v1\/sites\/([^/]+)\/held$/;

/** A site name from a path segment: what a config allows (config/fleet.ts), else 400 before any lookup. */
export function siteFromPath(raw: string): string {
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    throw nameInvalid('the site name in the path is not valid percent-encoding');
  }
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name)) throw nameInvalid(`"${name.slice(0, 80)}" is not a site name (lower-case letters, digits, ".", "_", "-")`);
  return name;
}

function knownSite(d: BundleDeps, raw: string): string {
  const site = siteFromPath(raw);
  if (!d.known(site)) throw nameUnknown(`no site "${site}" has reported to this hub; GET /api/v1/sites lists the sites it knows`, { site });
  return site;
}

/** A site's list of held blobs replaces the one kept for it; answers the new hash. */
export async function putHeld(d: BundleDeps, req: IncomingMessage, raw: string, hashes: Map<string, string>): Promise<{ hash: string; count: number }> {
  const site = knownSite(d, raw);
  if (!/^text\/plain\b/i.test(String(req.headers['content-type'] ?? ''))) throw badRequest('the list of held blobs is sent as text/plain, one digest a line');
  const set = await readHeld(req, d.now());
  await d.state.putHeld(site, set);
  hashes.set(site, set.hash);
  return { hash: set.hash, count: set.count };
}

/** The list kept for a site, as it sent it (for `berth export --since site:NAME`). */
export async function sendHeld(d: BundleDeps, req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> {
  const site = knownSite(d, raw);
  const set = await d.state.held(site);
  if (!set) throw notReported(site);
  const lines = [...heldDigests(set)].map((digest) => `${digest}\n`).join('');
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Berth-Held-At': new Date(set.at).toISOString() });
  res.end(req.method === 'HEAD' ? undefined : lines);
}

function notReported(site: string): Error {
  return conflict(
    `site "${site}" has not told this hub which blobs it holds yet; it does on its next poll once it runs a berth that sends them (wait one site.interval, or upgrade the site)`,
  );
}

interface BundleRequest {
  readonly images: ImageReference[];
  readonly platforms: readonly Platform[] | 'all';
}

function bundleRequest(url: URL): BundleRequest {
  const texts = url.searchParams
    .getAll('images')
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  if (texts.length === 0) throw badRequest('name the images: ?images=registry/repo:tag,registry/repo@sha256:...');
  if (texts.length > MAX_BUNDLE_IMAGES) throw badRequest(`at most ${MAX_BUNDLE_IMAGES} images per bundle (got ${texts.length}); ask for several bundles`);
  const images = texts.map((t) => {
    try {
      return parseImageReference(t);
    } catch (err) {
      throw nameInvalid(`image "${t.slice(0, 200)}": ${(err as Error).message}`);
    }
  });
  const p = url.searchParams.get('platform');
  let platforms: readonly Platform[] | 'all' = DEFAULT_PLATFORMS;
  if (p === 'all') platforms = 'all';
  else if (p !== null) {
    try {
      platforms = p.split(',').slice(0, 16).map(parsePlatform);
    } catch (err) {
      throw badRequest((err as Error).message);
    }
  }
  return { images, platforms };
}

/**
 * Plans every image first (a refusal is still a JSON error), then streams the tar: each blob
 * waits for the client to take the last (backpressure), none is held in memory. A failure after
 * the first byte cuts the connection, so a client never keeps a truncated tar for a whole one.
 */
export async function sendSiteBundle(d: BundleDeps, req: IncomingMessage, res: ServerResponse, raw: string, url: URL): Promise<void> {
  const site = knownSite(d, raw);
  if (d.building.count >= MAX_BUNDLES_AT_ONCE) {
    throw overloaded(`the hub is building ${MAX_BUNDLES_AT_ONCE} site bundles already, its limit; retry when one is done`, 60);
  }
  d.building.count++;
  try {
    await buildSiteBundle(d, req, res, site, url);
  } finally {
    d.building.count--;
  }
}

async function buildSiteBundle(d: BundleDeps, req: IncomingMessage, res: ServerResponse, site: string, url: URL): Promise<void> {
  const source = d.source;
  if (!source) throw unsupported('this hub has no upstream to read images from; configure proxy: or upstreams: on the hub');
  const wanted = bundleRequest(url);
  const set = await d.state.held(site);
  if (!set) throw notReported(site);
  const held = heldDigests(set);
  const plans: Planned[] = [];
  for (const image of wanted.images) {
    try {
      plans.push(await planImage(source, image, wanted.platforms));
    } catch (err) {
      if (isOciError(err)) throw err;
      const why = (err as Error).message;
      if (why.startsWith('not found')) throw manifestUnknown(image.repository, image.tag ?? image.digest ?? '');
      throw badRequest(`${image.repository}: ${why}`);
    }
  }
  const blobs = bundleBlobs(plans, held);
  const file = `berth-${site.replace(/[^a-z0-9._-]/g, '_')}-${new Date(d.now()).toISOString().replace(/[:.]/g, '-')}.tar`;
  res.writeHead(200, {
    'Content-Type': 'application/x-tar',
    'Content-Disposition': `attachment; filename="${file}"`,
    'X-Berth-Bundle-Blobs': String(blobs.size),
    'X-Berth-Bundle-Left-Out': String(leftOut(plans, held)),
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const writer = await openTarStreamWriter(res);
  const log = d.logger.child({ site, images: plans.map((p) => p.name) });
  try {
    const { written } = await writeBundle(source, plans, blobs, writer, { window: 1, tar: true, strict: true }, []);
    log.info({ blobs: written, leftOut: leftOut(plans, held), heldAt: set.at }, 'site bundle sent');
  } catch (err) {
    await writer.abort();
    log.warn({ err: (err as Error).message }, 'site bundle cut off');
  }
}
