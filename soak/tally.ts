/** @module soak/tally — what the traffic of a run did: pulls and pushes, failures by cause, excused interruptions, bytes. */
import type { Excuse } from './windows.js';

export type Kind = 'pull-tag' | 'pull-digest' | 'pull-moving' | 'pull-skopeo' | 'pull-pushed' | 'pull-hot' | 'push';

export interface Failure {
  readonly t: number;
  readonly kind: Kind;
  readonly cause: string;
  readonly detail: string;
}

/** Counters shared by every traffic loop of one run (one instance, passed in). */
export class Tally {
  readonly ok = new Map<Kind, number>();
  readonly failures: Failure[] = [];
  /** Interruptions the rule excuses (see windows.ts), per excuse and cause; each was retried. */
  readonly excused = new Map<string, number>();
  /** Verified manifest and blob bytes delivered to clients. */
  delivered = 0;
  /** Tag answers older than the last move by more than tagttl plus slack (allowed: reported only). */
  staleTags = 0;

  constructor(private readonly now: () => number) {}

  succeeded(kind: Kind, bytes: number): void {
    this.ok.set(kind, (this.ok.get(kind) ?? 0) + 1);
    this.delivered += bytes;
  }

  failed(kind: Kind, cause: string, detail: string): void {
    this.failures.push({ t: this.now(), kind, cause, detail: detail.slice(0, 400) });
  }

  excuse(excuse: Excuse, cause: string): void {
    const key = `${excuse}/${cause}`;
    this.excused.set(key, (this.excused.get(key) ?? 0) + 1);
  }

  get pulls(): number {
    let n = 0;
    for (const [kind, count] of this.ok) if (kind !== 'push') n += count;
    return n;
  }

  get pushes(): number {
    return this.ok.get('push') ?? 0;
  }

  failuresByCause(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const f of this.failures) out[`${f.kind}/${f.cause}`] = (out[`${f.kind}/${f.cause}`] ?? 0) + 1;
    return out;
  }
}
