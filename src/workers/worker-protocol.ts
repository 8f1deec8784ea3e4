/** @module workers/worker-protocol — the messages between the primary and its serving workers over the cluster IPC channel. */
import type { WorkerClaim } from './fill-table.js';

/** What a worker can be asked to report for the whole group (merged by the asker). */
export type Gathered = 'metrics' | 'stats' | 'history' | 'down';

/** Worker to primary: calls expect a reply with the same id; notes do not. */
export type ToPrimary =
  | { readonly berth: 'call'; readonly id: number; readonly op: 'claim'; readonly digest: string; readonly tempPath: string }
  | { readonly berth: 'call'; readonly id: number; readonly op: 'filling'; readonly digest: string }
  | { readonly berth: 'call'; readonly id: number; readonly op: 'gather'; readonly what: Gathered }
  /** The right to ask the upstream about a tag now (one worker checks, the others read its answer from the store). */
  | { readonly berth: 'call'; readonly id: number; readonly op: 'claimTag'; readonly key: string }
  /** Bytes of a blob to fetch by Range: the parts another worker fetches now are waited for (workers/range-table). */
  | { readonly berth: 'call'; readonly id: number; readonly op: 'rangeClaim'; readonly digest: string; readonly start: number; readonly end: number }
  /** The range fetches under way in a span (a whole-blob fill skips them); the asker is told when each ends. */
  | { readonly berth: 'call'; readonly id: number; readonly op: 'rangeUnder'; readonly digest: string; readonly start: number; readonly end: number }
  | { readonly berth: 'note'; readonly op: 'rangeDone'; readonly digest: string; readonly flight: number; readonly ok: boolean }
  | { readonly berth: 'note'; readonly op: 'releaseTag'; readonly key: string }
  /** The per-client bound on open uploads, counted for the whole group (an upload may end in another worker). */
  | { readonly berth: 'call'; readonly id: number; readonly op: 'uploadOpen'; readonly client: string; readonly upload: string }
  | { readonly berth: 'note'; readonly op: 'uploadClosed'; readonly upload: string }
  /** Bytes of an upstream's WAN budget (`ratelimit`, `backgroundwindow`), kept by the primary for the whole group: the reply comes when they are granted. */
  | { readonly berth: 'call'; readonly id: number; readonly op: 'budget'; readonly upstream: string; readonly n: number; readonly background: boolean }
  /** Something the other workers should count too (an upstream failure for their breakers, a failed login): relayed to them. */
  | { readonly berth: 'note'; readonly op: 'share'; readonly topic: SharedTopic; readonly data: unknown }
  | { readonly berth: 'note'; readonly op: 'ready'; readonly digest: string; readonly size: number | null }
  | { readonly berth: 'note'; readonly op: 'finish' | 'unfollow'; readonly digest: string }
  | { readonly berth: 'note'; readonly op: 'listening' }
  /** The lead worker's private admin address (loopback), where the others forward /api/ and /metrics. */
  | { readonly berth: 'note'; readonly op: 'admin'; readonly port: number }
  | { readonly berth: 'collected'; readonly id: number; readonly value: unknown };

/** Primary to worker. */
export type ToWorker =
  | { readonly berth: 'reply'; readonly id: number; readonly value: WorkerClaim | boolean | unknown[] }
  | { readonly berth: 'range'; readonly flight: number; readonly ok: boolean }
  | { readonly berth: 'fill'; readonly kind: 'ready' | 'end'; readonly digest: string; readonly size: number | null }
  | { readonly berth: 'collect'; readonly id: number; readonly what: Gathered }
  | { readonly berth: 'admin'; readonly port: number }
  | { readonly berth: 'reload' }
  | { readonly berth: 'shared'; readonly topic: SharedTopic; readonly data: unknown };

/** `breaker`: an upstream outcome that moves circuit breakers; `login`: a failed or good password check (auth/failures). */
export type SharedTopic = 'breaker' | 'login';

/** The environment variables a worker is started with: its slot (0 is the lead) and the group size. */
export const SLOT_ENV = 'BERTH_WORKER_SLOT';
export const COUNT_ENV = 'BERTH_WORKER_COUNT';

export function isToWorker(m: unknown): m is ToWorker {
  return typeof m === 'object' && m !== null && typeof (m as { berth?: unknown }).berth === 'string';
}

export function isToPrimary(m: unknown): m is ToPrimary {
  return isToWorker(m);
}
