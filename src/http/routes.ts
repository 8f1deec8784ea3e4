/** @module http/routes — the OCI distribution route table: path and method to a typed route. */

export type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

/** Methods each route kind answers; anything else is 405 UNSUPPORTED. */
export const ROUTE_METHODS: Record<Route['kind'], readonly string[]> = {
  base: ['GET', 'HEAD'],
  catalog: ['GET', 'HEAD'],
  manifest: ['GET', 'HEAD', 'PUT', 'DELETE'],
  blob: ['GET', 'HEAD', 'DELETE'],
  uploads: ['POST'],
  upload: ['GET', 'PATCH', 'PUT', 'DELETE'],
  tags: ['GET', 'HEAD'],
  referrers: ['GET', 'HEAD'],
};

const PATTERNS: Array<[RegExp, (m: RegExpExecArray) => Route]> = [
  [/^\/v2\/?$/, () => ({ kind: 'base' })],
  [/^\/v2\/_catalog$/, () => ({ kind: 'catalog' })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1]!, reference: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, id: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  [/^\/v2\/(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1]! })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1]!, digest: m[2]! })],
];

/** Matches a decoded path; undefined for paths that are not part of the API. */
export function matchRoute(path: string): Route | undefined {
  for (const [re, build] of PATTERNS) {
    const m = re.exec(path);
    if (m) return build(m);
  }
  return undefined;
}
