/** @module ports/target — what a request is about: which upstream (if any) and which repository. */
import type { UpstreamConfig } from '../config/types.js';
import type { RegistryClient } from '../upstream/client.js';

export interface Upstream {
  readonly config: UpstreamConfig;
  readonly client: RegistryClient;
}

export interface Target {
  /** Undefined in plain-registry mode: content lives only here. */
  readonly upstream: Upstream | undefined;
  /** Metadata key of the upstream ("" for the local registry). */
  readonly key: string;
  readonly repository: string;
}

/** How a request was answered, reported in the access log. */
export type Outcome = 'hit' | 'miss' | 'joined' | 'stale' | 'local';
