/** @module assembly/group-telemetry — metrics, stats and history for the whole process group: each worker's, gathered through the primary and merged. */
import { AggregatorRegistry } from 'prom-client';
import type { Telemetry } from '../ops/telemetry.js';
import type { HistoryPoint } from '../ops/history.js';
import type { WorkerChannel } from '../workers/channel.js';

type Stats = Record<string, unknown>;

/** Registers what this worker reports, and returns the admin API's view of the whole group. */
export function groupTelemetry(local: Telemetry, channel: WorkerChannel) {
  channel.provide('metrics', () => local.registry.getMetricsAsJSON());
  channel.provide('stats', () => local.stats());
  channel.provide('history', () => local.history.toJSON());
  const answers = async (what: 'metrics' | 'stats' | 'history') => (await channel.gather(what)).filter((a) => a !== null);
  return {
    metrics: async (): Promise<{ contentType: string; body: string }> => {
      const merged = AggregatorRegistry.aggregate((await answers('metrics')) as object[]);
      return { contentType: merged.contentType, body: await merged.metrics() };
    },
    stats: async () => mergeStats((await answers('stats')) as Stats[]),
    history: {
      // The admin handler reads history synchronously; the merged one is fetched on request (see historyJSON).
      toJSON: () => local.history.toJSON(),
    },
    historyJSON: async () => mergeHistory((await answers('history')) as Array<{ intervalSeconds: number; points: HistoryPoint[] }>),
  };
}

/** Shared by every worker (read from the one store): reported once, not summed. */
const SHARED = new Set(['store', 'queueDepth']);

/** Sums the workers' counters; the store and queue are the same for all; uptime is the oldest worker's. */
export function mergeStats(list: readonly Stats[]): Stats {
  if (list.length === 0) return {};
  const out = sum(list) as Stats;
  for (const k of SHARED) if (k in list[0]!) out[k] = list[0]![k];
  out['uptimeSeconds'] = Math.max(...list.map((s) => Number(s['uptimeSeconds'] ?? 0)));
  const r = out['requests'] as Record<string, number> | undefined;
  if (r) {
    const answered = (r['hit'] ?? 0) + (r['miss'] ?? 0) + (r['joined'] ?? 0) + (r['stale'] ?? 0);
    out['hitRatio'] = answered === 0 ? 0 : ((r['hit'] ?? 0) + (r['joined'] ?? 0) + (r['stale'] ?? 0)) / answered;
  }
  return out;
}

function sum(values: readonly unknown[]): unknown {
  const first = values[0];
  if (typeof first === 'number') return values.reduce((n: number, v) => n + (typeof v === 'number' ? v : 0), 0);
  if (first && typeof first === 'object' && !Array.isArray(first)) {
    const keys = new Set(values.flatMap((v) => (v && typeof v === 'object' ? Object.keys(v) : [])));
    return Object.fromEntries([...keys].map((k) => [k, sum(values.map((v) => (v as Record<string, unknown>)?.[k]).filter((x) => x !== undefined))]));
  }
  return first;
}

/** Points of every worker in the same interval (by its end time) added together. */
export function mergeHistory(list: ReadonlyArray<{ intervalSeconds: number; points: HistoryPoint[] }>): { intervalSeconds: number; points: HistoryPoint[] } {
  const intervalSeconds = list[0]?.intervalSeconds ?? 10;
  const step = intervalSeconds * 1000;
  const buckets = new Map<number, HistoryPoint>();
  for (const p of list.flatMap((h) => h.points)) {
    const t = Math.round(p.t / step) * step;
    const b = buckets.get(t);
    buckets.set(
      t,
      b
        ? {
            t,
            hit: b.hit + p.hit,
            miss: b.miss + p.miss,
            joined: b.joined + p.joined,
            stale: b.stale + p.stale,
            bytesFromCache: b.bytesFromCache + p.bytesFromCache,
            bytesFromUpstream: b.bytesFromUpstream + p.bytesFromUpstream,
          }
        : { ...p, t },
    );
  }
  return { intervalSeconds, points: [...buckets.values()].sort((a, b) => a.t - b.t) };
}
