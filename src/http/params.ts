/** @module http/params — the API's query parameters, checked before access control or any handler: a malformed one is a 400 naming it. */
import { isDigest } from '../oci/digest.js';
import { queryParameterInvalid } from '../oci/errors.js';
import { isRepositoryName, isTag } from '../oci/reference.js';
import type { Route } from './routes.js';

/** Default and ceiling for page sizes, as distribution uses; a larger `n` gets this many (the spec allows fewer). */
export const MAX_PAGE = 1000;

const DECIMAL = /^[0-9]+$/;
/** RFC 6838's restricted-name on both sides of the slash, which image-spec asks of artifactType. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
/** A registry host as containerd sends it in `ns`: a DNS name or an IPv4 or bracketed IPv6 address, with an optional port. */
const REGISTRY_HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/;

/** An empty value counts as absent, as distribution reads `n=` and `last=`. */
function param(url: URL, name: string): string | undefined {
  const value = url.searchParams.get(name);
  return value === null || value === '' ? undefined : value;
}

/** `n`: decimal digits only (no sign, exponent, fraction or space); 0 lists nothing; above MAX_PAGE it is clamped. */
export function pageSize(url: URL): number {
  const raw = param(url, 'n');
  if (raw === undefined) return MAX_PAGE;
  const invalid = (why: string) => queryParameterInvalid('n', raw, why, 'PAGINATION_NUMBER_INVALID');
  if (!DECIMAL.test(raw)) throw invalid('a non-negative integer in decimal digits');
  const n = Number(raw);
  // Beyond 2^53 the number is no longer exact; Go's strconv.Atoi (distribution) refuses such values too.
  if (!Number.isSafeInteger(n)) throw invalid(`at most ${Number.MAX_SAFE_INTEGER}`);
  return Math.min(n, MAX_PAGE);
}

/** `last`: where the previous page ended, so a tag (tag list) or a repository name (catalog). */
export function pageStart(url: URL, of: 'tag' | 'repository'): string | undefined {
  const raw = param(url, 'last');
  if (raw === undefined) return undefined;
  if (of === 'tag' && !isTag(raw)) throw queryParameterInvalid('last', raw, 'a tag (the last one of the previous page)');
  if (of === 'repository' && !isRepositoryName(raw))
    throw queryParameterInvalid('last', raw, 'a repository name (the last one of the previous page)', 'NAME_INVALID');
  return raw;
}

export function paging(url: URL, of: 'tag' | 'repository'): { n: number; last: string | undefined } {
  return { n: pageSize(url), last: pageStart(url, of) };
}

/** `artifactType` on referrers: a media type. */
export function artifactTypeFilter(url: URL): string | undefined {
  const raw = param(url, 'artifactType');
  if (raw !== undefined && !MEDIA_TYPE.test(raw)) throw queryParameterInvalid('artifactType', raw, 'a media type such as application/vnd.example+json');
  return raw;
}

/** `ns`: the registry a containerd mirror request is for. */
export function registryNamespace(url: URL): string | undefined {
  const raw = param(url, 'ns');
  if (raw !== undefined && (raw.length > 255 || !REGISTRY_HOST.test(raw))) throw queryParameterInvalid('ns', raw, 'a registry host[:port]', 'NAME_INVALID');
  return raw;
}

function checkDigest(url: URL, name: string): void {
  const raw = param(url, name);
  if (raw !== undefined && !isDigest(raw)) throw queryParameterInvalid(name, raw, 'a digest <algorithm>:<hex>, sha256 or sha512', 'DIGEST_INVALID');
}

/**
 * Every query parameter the route reads, checked at once (pages, filters and digests read them
 * again, by then known to be sound). Before access control: a mount's digest goes into the
 * upstream probe that checks the client may read it.
 */
export function checkQuery(url: URL, route: Route, method: string | undefined): void {
  registryNamespace(url);
  if (route.kind === 'catalog') paging(url, 'repository');
  else if (route.kind === 'tags') paging(url, 'tag');
  else if (route.kind === 'referrers') artifactTypeFilter(url);
  else if (route.kind === 'uploads') {
    checkDigest(url, 'digest');
    checkDigest(url, 'mount');
    const from = param(url, 'from');
    if (from !== undefined && param(url, 'mount') !== undefined && !isRepositoryName(from))
      throw queryParameterInvalid('from', from, 'a repository name', 'NAME_INVALID');
  } else if (route.kind === 'upload' && method === 'PUT') checkDigest(url, 'digest');
}
