/** @module auth/rules — per-repository authorisation: which users may pull, push or delete what, per upstream. */
import type { AccessRule } from '../config/types.js';
import { repositoryPattern } from '../oci/repository-glob.js';

export { repositoryPattern };

export type Action = 'pull' | 'push' | 'delete';

/** The user name rules use for a client without credentials. */
export const ANONYMOUS = 'anonymous';
/** In a rule's users, any authenticated user. */
export const ANY_USER = '*';

interface CompiledRule {
  readonly users: ReadonlySet<string>;
  readonly repositories: readonly RegExp[];
  readonly actions: ReadonlySet<string>;
  readonly upstream: string | undefined;
}

export class Rules {
  private readonly rules: readonly CompiledRule[];

  constructor(rules: readonly AccessRule[]) {
    this.rules = rules.map((r) => ({
      users: new Set(r.users),
      repositories: r.repositories.map(repositoryPattern),
      actions: new Set(r.actions),
      upstream: r.upstream,
    }));
  }

  /** `user` undefined is an anonymous client; `upstream` is the upstream's name ("" for the local registry). */
  allows(user: string | undefined, upstream: string, repository: string, action: Action): boolean {
    return this.rules.some(
      (r) =>
        (user === undefined ? r.users.has(ANONYMOUS) : r.users.has(user) || r.users.has(ANY_USER)) &&
        (r.upstream === undefined || r.upstream === upstream) &&
        (r.actions.has(action) || r.actions.has('*')) &&
        r.repositories.some((p) => p.test(repository)),
    );
  }

  /** True when some rule lets anonymous clients do something, so they are not turned away up front. */
  get anonymousAllowed(): boolean {
    return this.rules.some((r) => r.users.has(ANONYMOUS));
  }
}
