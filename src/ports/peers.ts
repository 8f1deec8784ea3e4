/** @module ports/peers — what the replicas of a site say to each other over HTTP: the peer paths, and the copy of a write-behind push. */
import type { RepositoryTarget } from './repository-target.js';

/** GET <PEER_PATH><digest>: a blob another replica stores or fills now (cluster/peer-client). */
export const PEER_PATH = '/_berth/peer/blobs/';
export const PEER_AUTH_SCHEME = 'Berth-Peer';
/** POST: take a copy of a write-behind push from the replica that took it (cluster/peer-copy). */
export const PEER_COPY_PATH = '/_berth/peer/copy';

/** What the replica that took a push asks another to copy from it (`from`): everything the push needs that `from` stores. */
export interface CopyRequest {
  readonly upstream: string;
  readonly repository: string;
  readonly from: string;
  readonly blobs: readonly string[];
  /** Child manifests first, the pushed manifest last. */
  readonly manifests: ReadonlyArray<{ digest: string; mediaType: string }>;
}

/** Takes the copy a `CopyRequest` asks for, reading from the replica that sent it (cluster/peer-copy). */
export interface PeerCopy<T extends RepositoryTarget> {
  take(target: T, req: CopyRequest): Promise<{ copied: number; present: number }>;
}
