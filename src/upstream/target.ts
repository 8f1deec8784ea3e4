/** @module upstream/target — what a request is about: which upstream (its config and client, if any) and which repository. */
import type { UpstreamConfig } from '../config/types.js';
import type { RepositoryTarget } from '../ports/repository-target.js';
import type { RegistryClient } from './client.js';

export interface Upstream {
  readonly config: UpstreamConfig;
  readonly client: RegistryClient;
}

export interface Target extends RepositoryTarget {
  /** Undefined in plain-registry mode: content lives only here. */
  readonly upstream: Upstream | undefined;
}
