/** @module cli/bundle-sources — where `berth export` reads images: the store a config names, or a registry API (a running berth, or any registry). */
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { Agent, interceptors, request } from 'undici';
import type { BerthConfig, UpstreamConfig } from '../config/types.js';
import { imageRouter } from '../assembly/operations.js';
import { digestOf } from '../oci/digest.js';
import type { ImageReference } from '../oci/image-ref.js';
import { parseManifest, MAX_MANIFEST_SIZE } from '../oci/manifest.js';
import { UPSTREAM_ACCEPT } from '../oci/mediatypes.js';
import type { Upstream } from '../upstream/target.js';
import { BlobStore } from '../storage/blob-files.js';
import { StoreLayout } from '../storage/layout.js';
import { openLocalIndex } from '../storage/local.js';
import { RegistryClient } from '../upstream/client.js';
import { instanceId } from '../upstream/loop.js';
import { StoreMissingError } from '../oci/errors.js';
import type { ExportSource } from '../cache/bundle-build.js';

export type { ExportSource, FetchedManifest } from '../cache/bundle-build.js';

/**
 * The store named by a config, read as `berth ls` reads it: safe beside a running berth (SQLite in
 * WAL mode; blob files are immutable and read through a descriptor opened before any removal).
 */
export async function storeSource(config: BerthConfig, now: () => number): Promise<ExportSource> {
  const root = config.storage.rootdirectory;
  if (!existsSync(new StoreLayout(root).metadataDb)) {
    throw new StoreMissingError(`no berth store at ${root} (no metadata.db): check storage.filesystem.rootdirectory or --config`);
  }
  const blobs = new BlobStore(root);
  const index = openLocalIndex(root, now);
  const instance = await instanceId(root, false);
  const logger = pino({ level: 'silent' });
  const upstreams: Upstream[] = config.upstreams.map((u) => ({
    config: u,
    client: new RegistryClient(u, config.upstreamTimeouts, logger, now, undefined, instance),
  }));
  const route = imageRouter(upstreams);
  const target = (image: ImageReference) => route(image);
  return {
    name: `the store at ${root}`,
    async manifest(image, ref) {
      const t = target(image);
      const digest = ref.kind === 'digest' ? ref.digest : (await index.repos.tag(t.key, t.repository, ref.tag))?.digest;
      if (!digest) return undefined;
      const record = await index.repos.manifest(t.key, t.repository, digest);
      if (!record || (await blobs.size(digest)) === undefined) return undefined;
      return { digest, mediaType: record.mediaType, body: await blobs.readAll(digest) };
    },
    async blob(_image, digest) {
      const stored = await blobs.open(digest);
      if (!stored) return undefined;
      const stream = stored.stream();
      // The descriptor closes once the stream has ended.
      stored.close().catch(() => undefined);
      return stream;
    },
    async file(digest) {
      return (await blobs.size(digest)) === undefined ? undefined : blobs.path(digest);
    },
    async referrers(image, digest) {
      const t = target(image);
      const rows = await index.repos.referrers(t.key, t.repository, digest, { limit: 1000 });
      return rows.map((r) => ({ mediaType: r.mediaType, digest: r.digest, size: r.size, ...(r.artifactType ? { artifactType: r.artifactType } : {}) }));
    },
    async close() {
      index.close();
      await Promise.all(upstreams.map((u) => u.client.close()));
    },
  };
}

export interface HttpSourceOptions {
  readonly username?: string;
  readonly password?: string;
  /** A running berth: the image's registry part goes in `ns`, as containerd sends it; a registry: ignored. */
  readonly berth: boolean;
}

/** A registry API: a running berth (`--server`) or any registry (`--from-registry`), as an OCI client. */
export function httpSource(baseUrl: string, opts: HttpSourceOptions): ExportSource {
  const base = new URL(baseUrl).toString().replace(/\/+$/, '');
  const basic = opts.username !== undefined ? `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64')}` : undefined;
  const tokens = new Map<string, string>();
  // Registries may send blobs from elsewhere (object storage); the interceptor drops credentials when the origin changes.
  const dispatcher = new Agent().compose(interceptors.redirect({ maxRedirections: 5 }));

  const url = (image: ImageReference, path: string) => {
    const ns = opts.berth && image.registry ? `?ns=${encodeURIComponent(image.registry)}` : '';
    return `${base}/v2/${image.repository}/${path}${ns}`;
  };
  /** GET with one answer to an auth challenge (Basic, or a Bearer token fetched with the credentials). */
  const get = async (image: ImageReference, path: string, accept?: string) => {
    const headers: Record<string, string> = accept ? { accept } : {};
    const auth = tokens.get(image.repository) ?? basic;
    let res = await request(url(image, path), { method: 'GET', headers: auth ? { ...headers, authorization: auth } : headers, dispatcher });
    if (res.statusCode !== 401) return res;
    await res.body.dump();
    const challenge = String(res.headers['www-authenticate'] ?? '');
    const bearer = /^Bearer\s+(.*)$/i.exec(challenge);
    if (!bearer) return res;
    const params = Object.fromEntries([...bearer[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    const realm = new URL(params['realm'] ?? '');
    if (params['service']) realm.searchParams.set('service', params['service']);
    realm.searchParams.set('scope', params['scope'] ?? `repository:${image.repository}:pull`);
    const tokenRes = await request(realm, { method: 'GET', headers: basic ? { authorization: basic } : {} });
    const body = (await tokenRes.body.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (tokenRes.statusCode !== 200 || !token)
      throw new Error(`${realm.origin} refused a token for ${image.repository} (${tokenRes.statusCode}): check the credentials`);
    tokens.set(image.repository, `Bearer ${token}`);
    res = await request(url(image, path), { method: 'GET', headers: { ...headers, authorization: `Bearer ${token}` }, dispatcher });
    return res;
  };
  const refused = async (res: { statusCode: number; body: { text(): Promise<string> } }, what: string) =>
    new Error(`${base} answered ${res.statusCode} for ${what}: ${(await res.body.text().catch(() => '')).slice(0, 300)}`);

  return {
    name: base,
    async manifest(image, ref) {
      const reference = ref.kind === 'digest' ? ref.digest : ref.tag;
      const res = await get(image, `manifests/${reference}`, UPSTREAM_ACCEPT);
      if (res.statusCode === 404) {
        await res.body.dump();
        return undefined;
      }
      if (res.statusCode !== 200) throw await refused(res, `${image.repository}:${reference}`);
      const body = Buffer.from(await res.body.arrayBuffer());
      if (body.length > MAX_MANIFEST_SIZE) throw new Error(`manifest ${image.repository}:${reference} is larger than ${MAX_MANIFEST_SIZE} bytes`);
      const digest = digestOf(body);
      if (ref.kind === 'digest' && digest !== ref.digest) throw new Error(`manifest ${ref.digest} from ${base} does not match its digest (computed ${digest})`);
      const mediaType = parseManifest(body, String(res.headers['content-type'] ?? '')).mediaType;
      return { digest, mediaType, body };
    },
    async blob(image, digest) {
      const res = await get(image, `blobs/${digest}`);
      if (res.statusCode === 404) {
        await res.body.dump();
        return undefined;
      }
      if (res.statusCode !== 200) throw await refused(res, `blob ${digest}`);
      return res.body;
    },
    async referrers(image, digest) {
      const res = await get(image, `referrers/${digest}`);
      if (res.statusCode !== 200) {
        await res.body.dump();
        return [];
      }
      const body = Buffer.from(await res.body.arrayBuffer());
      try {
        return [...parseManifest(body, 'application/vnd.oci.image.index.v1+json').manifests];
      } catch {
        return [];
      }
    },
    async close() {
      await dispatcher.close();
    },
  };
}

/**
 * The credentials of the config's upstream at `url` (same scheme, host and port; the first of
 * several with a username), for `berth export --from-registry URL --config FILE`.
 */
export function upstreamCredentials(upstreams: readonly UpstreamConfig[], url: string): { username: string; password?: string } | undefined {
  const origin = (text: string) => {
    try {
      return new URL(text).origin;
    } catch {
      return undefined;
    }
  };
  const wanted = origin(url);
  const match = upstreams.find((u) => u.username !== undefined && origin(u.remoteurl) === wanted);
  return match?.username === undefined ? undefined : { username: match.username, ...(match.password !== undefined ? { password: match.password } : {}) };
}

/** The blobs a site last told the hub at `baseUrl` it holds (GET /api/v1/sites/<site>/held), for `--since site:NAME`. */
export async function hubHeld(baseUrl: string, creds: { username?: string; password?: string }, site: string): Promise<Set<string>> {
  const base = new URL(baseUrl).toString().replace(/\/+$/, '');
  const headers: Record<string, string> =
    creds.username !== undefined ? { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}` } : {};
  const res = await request(`${base}/api/v1/sites/${encodeURIComponent(site)}/held`, { method: 'GET', headers });
  const text = await res.body.text();
  if (res.statusCode !== 200) {
    const said = /"message"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(text)?.[1] ?? text.slice(0, 300);
    throw new Error(`--since site:${site}: ${base} answered ${res.statusCode}: ${said}`);
  }
  return new Set(text.split('\n').filter((l) => l !== ''));
}
