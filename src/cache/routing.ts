/** @module cache/routing — choosing the upstream a request is for (ns, Host, path prefix, default). */
import { nameUnknown } from '../oci/error-catalogue.js';
import { assertRepositoryName } from '../oci/reference.js';
import type { Target, Upstream } from '../upstream/target.js';

const DOCKER_HUB_ALIASES = ['docker.io', 'registry-1.docker.io', 'index.docker.io'];

export interface RoutingInput {
  readonly name: string;
  readonly ns: string | undefined;
  readonly host: string | undefined;
}

/**
 * Resolves the upstream and the repository name as the upstream knows it. A registry that no
 * upstream lists is refused and never falls back to the default: berth is not an open proxy.
 */
export function resolveTarget(upstreams: readonly Upstream[], input: RoutingInput): Target {
  const name = assertRepositoryName(input.name);
  if (upstreams.length === 0) return { upstream: undefined, key: '', repository: name };
  // A single upstream with no hosts listed behaves as distribution's proxy: ns and Host are ignored.
  const enforceNames = upstreams.length > 1 || upstreams.some((u) => u.config.hosts.length > 0);

  if (enforceNames && input.ns) {
    const byNs = findByHost(upstreams, input.ns);
    if (!byNs)
      throw nameUnknown(`registry ${input.ns.slice(0, 255)} is not mirrored by this berth (no upstream lists it in hosts)`, {
        registry: input.ns.slice(0, 255),
      });
    return target(byNs, name);
  }
  if (enforceNames && input.host) {
    const byHost = findByHost(upstreams, input.host.replace(/:\d+$/, ''));
    if (byHost) return target(byHost, name);
  }
  for (const u of upstreams) {
    const prefix = u.config.prefix;
    if (prefix && name.startsWith(`${prefix}/`)) return target(u, assertRepositoryName(name.slice(prefix.length + 1)));
  }
  const fallback = upstreams.find((u) => u.config.default);
  if (!fallback) throw nameUnknown(`repository ${name} names no configured upstream (no prefix matched and no upstream is the default)`, { name });
  return target(fallback, name);
}

/** The upstream a request naming no repository (`GET /v2/`) is about: by ns or Host, else the default. */
export function upstreamFor(upstreams: readonly Upstream[], input: Omit<RoutingInput, 'name'>): Upstream | undefined {
  const named = (input.ns && findByHost(upstreams, input.ns)) || (input.host && findByHost(upstreams, input.host.replace(/:\d+$/, '')));
  return named || upstreams.find((u) => u.config.default);
}

function target(upstream: Upstream, repository: string): Target {
  return { upstream, key: upstream.config.name, repository };
}

function findByHost(upstreams: readonly Upstream[], host: string): Upstream | undefined {
  const h = host.toLowerCase();
  const wanted = DOCKER_HUB_ALIASES.includes(h) ? DOCKER_HUB_ALIASES : [h];
  return upstreams.find((u) => u.config.hosts.some((listed) => wanted.includes(listed.toLowerCase())));
}
