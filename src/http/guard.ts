/** @module http/guard — the access check in front of each repository route: which action, what to ask upstream, mounts. */
import type { IncomingMessage } from 'node:http';
import type { AccessControl } from '../auth/access.js';
import type { Action } from '../auth/rules.js';
import type { Target } from '../upstream/target.js';
import { probes, type Probe } from '../upstream/passthrough.js';
import type { Route } from './routes.js';

type RepositoryRoute = Exclude<Route, { kind: 'base' } | { kind: 'catalog' }>;

/** Reading is pull; DELETE of content is delete; everything else on a repository (uploads, manifest PUT) is push. */
export function actionOf(route: RepositoryRoute, method: string | undefined): Action {
  if (method === 'GET' || method === 'HEAD') return route.kind === 'upload' ? 'push' : 'pull';
  if (method === 'DELETE' && (route.kind === 'manifest' || route.kind === 'blob')) return 'delete';
  return 'push';
}

/** An upstream request that needs the same access, for pass-through checks. */
export function probeOf(route: RepositoryRoute): Probe {
  if (route.kind === 'manifest') return probes.manifest(route.reference);
  if (route.kind === 'blob') return probes.blob(route.digest);
  return probes.tags();
}

/**
 * Throws 401/403 unless the client may do what the request asks. A cross-repository mount
 * (`?mount=&from=`) reads the source repository, so it needs pull there too.
 */
export async function guard(
  access: AccessControl,
  req: IncomingMessage,
  url: URL,
  route: RepositoryRoute,
  target: Target,
  resolve: (name: string) => Target,
): Promise<string | undefined> {
  const authorization = req.headers.authorization;
  const client = req.socket.remoteAddress;
  const user = await access.authorize(authorization, { target, action: actionOf(route, req.method), probe: probeOf(route), client, name: route.name });
  const from = url.searchParams.get('from');
  const mount = url.searchParams.get('mount');
  if (route.kind === 'uploads' && from && mount) {
    await access.authorize(authorization, { target: resolve(from), action: 'pull', probe: probes.blob(mount), client, name: from });
  }
  return user;
}
