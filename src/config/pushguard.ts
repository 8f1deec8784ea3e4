/** @module config/pushguard — a cache that forwards pushes with its own upstream account must authenticate its clients (docs/design.md). */
import type { BerthConfig } from './types.js';

/**
 * Problems (key path first, as every config problem) for upstreams that would forward an
 * anonymous client's push with berth's own credentials. Without `auth.htpasswd` anyone who can
 * reach berth could push into the central registry as berth's account; with `passthroughauth`
 * the upstream itself checks the client's own credentials first.
 */
export function pushGuardProblems(config: BerthConfig, paths: readonly string[]): string[] {
  if (config.auth?.htpasswd) return [];
  return config.upstreams.flatMap((u, i) => {
    if (u.pushmode !== 'write-through' && u.pushmode !== 'write-behind') return [];
    if (u.username === undefined || u.passthrough) return [];
    return [
      `${paths[i] ?? u.name}.pushmode: ${u.pushmode} forwards pushes to ${u.remoteurl} with berth's own account "${u.username}", so any client reaching berth could push as that account; allowed: add auth.htpasswd (clients log in to berth), or passthroughauth: true on this upstream (clients log in with their own upstream account), or pushmode: local or readonly`,
    ];
  });
}
