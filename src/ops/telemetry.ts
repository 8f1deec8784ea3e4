/** @module ops/telemetry — Prometheus metrics (own registry) and the admin API's stats, fed by the observers. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CacheObserver } from '../cache/cache-observer.js';
import type { Outcome } from '../ports/request-observer.js';
import type { RequestObserver, RequestRecord } from '../ports/request-observer.js';
import type { UpstreamObserver } from '../upstream/client.js';
import { StatsHistory, type HistoryTotals } from './history.js';

/** Live values read at scrape time rather than pushed; the store's come through its (asynchronous) ports. */
export interface TelemetrySources {
  fillsInFlight(): number;
  store(): { bytes: number; blobs: number } | Promise<{ bytes: number; blobs: number }>;
  /** Bytes; 0 = unbounded. */
  readonly maxsize: number;
  upstreams(): Array<{ name: string; up: boolean }>;
  /** Push queue depth (0 until a queue exists). */
  queueDepth(): number | Promise<number>;
}

/** What is reported before the observed parts exist (they attach their sources once built). */
const NO_SOURCES: TelemetrySources = { fillsInFlight: () => 0, store: () => ({ bytes: 0, blobs: 0 }), maxsize: 0, upstreams: () => [], queueDepth: () => 0 };

export interface TelemetryOptions {
  readonly now: () => number;
  readonly upstreamNames: readonly string[];
  /** Given here, or later with attach() once what they read is built. */
  readonly sources?: TelemetrySources;
  readonly history?: StatsHistory;
}

/** Outcomes a client request can have; all but `miss` were answered without a new upstream transfer. */
type OutcomeName = 'hit' | 'miss' | 'joined' | 'stale' | 'local';
/** Routes whose bodies are content: their bytes and outcomes make up the stats. */
const CONTENT_ROUTES = new Set(['manifest', 'blob']);

export class Telemetry implements CacheObserver, UpstreamObserver, RequestObserver {
  readonly registry = new Registry();
  readonly history: StatsHistory;
  private readonly startedAt: number;
  private readonly requests: Record<OutcomeName, number> = { hit: 0, miss: 0, joined: 0, stale: 0, local: 0 };
  private bytesFromCache = 0;
  private bytesFromUpstream = 0;
  private wanBytesSaved = 0;
  private readonly upstreamBytesBy = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  private readonly m;
  private sources: TelemetrySources;

  constructor(private readonly opts: TelemetryOptions) {
    this.sources = opts.sources ?? NO_SOURCES;
    this.startedAt = opts.now();
    this.history = opts.history ?? new StatsHistory();
    for (const u of opts.upstreamNames) this.upstreamBytesBy.set(u, 0);
    const registers = [this.registry];
    const src = () => this.sources;
    this.m = {
      requests: new Counter({
        name: 'berth_http_requests_total',
        help: 'HTTP requests by route, method, status and cache outcome',
        labelNames: ['route', 'method', 'status', 'outcome'] as const,
        registers,
      }),
      duration: new Histogram({
        name: 'berth_http_request_duration_seconds',
        help: 'Time to answer a request, until the last byte was sent',
        labelNames: ['route'] as const,
        buckets: [0.005, 0.025, 0.1, 0.5, 2, 10, 60, 300],
        registers,
      }),
      served: new Counter({
        name: 'berth_served_bytes_total',
        help: 'Manifest and blob bytes sent to clients, by source: cache (hit, joined, stale, local) or upstream (miss)',
        labelNames: ['source'] as const,
        registers,
      }),
      sendfile: new Counter({
        name: 'berth_sendfile_bytes_total',
        help: 'Blob bytes the kernel sent from file to socket (sendfile, plain TCP); the rest of berth_served_bytes_total went through the process',
        registers,
      }),
      upstream: new Counter({
        name: 'berth_upstream_bytes_total',
        help: 'Manifest and blob bytes received from each upstream (the WAN cost)',
        labelNames: ['upstream'] as const,
        registers,
      }),
      saved: new Counter({
        name: 'berth_wan_bytes_saved_total',
        help: 'Bytes sent to clients that did not cross the WAN for that request (outcomes hit, joined, stale)',
        registers,
      }),
      joined: new Counter({ name: 'berth_joined_requests_total', help: 'Requests that joined an upstream transfer already in progress', registers }),
      evictions: new Counter({
        name: 'berth_evictions_total',
        help: 'Blobs and manifests removed from the store, by reason: size (LRU), ttl, admin',
        labelNames: ['reason'] as const,
        registers,
      }),
      evictedBytes: new Counter({
        name: 'berth_evicted_bytes_total',
        help: 'Bytes removed from the store, by reason',
        labelNames: ['reason'] as const,
        registers,
      }),
      signatures: new Counter({
        name: 'berth_signature_checks_total',
        help: 'Manifests checked against the verify: policy, by result: valid, denied (enforce), warned (served in warn mode)',
        labelNames: ['result'] as const,
        registers,
      }),
      hubPoll: new Histogram({
        name: 'berth_hub_poll_duration_seconds',
        help: "The fleet hub's own time on a site's poll: from its arrival to the answer's last byte",
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
        registers,
      }),
      tokens: new Counter({
        name: 'berth_upstream_token_refreshes_total',
        help: "Bearer tokens fetched from each upstream's token service",
        labelNames: ['upstream'] as const,
        registers,
      }),
    };
    new Gauge({
      name: 'berth_fills_in_flight',
      help: 'Upstream blob transfers in progress',
      registers,
      collect() {
        this.set(src().fillsInFlight());
      },
    });
    new Gauge({
      name: 'berth_store_bytes',
      // One store for every worker: summing the workers' reports would count it once per worker.
      aggregator: 'max',
      help: 'Bytes of content in the store',
      registers,
      async collect() {
        this.set((await src().store()).bytes);
      },
    });
    new Gauge({
      name: 'berth_store_blobs',
      // One store for every worker: summing the workers' reports would count it once per worker.
      aggregator: 'max',
      help: 'Blobs and manifests in the store',
      registers,
      async collect() {
        this.set((await src().store()).blobs);
      },
    });
    new Gauge({
      name: 'berth_store_limit_bytes',
      // One store for every worker: summing the workers' reports would count it once per worker.
      aggregator: 'max',
      help: 'storage.maxsize (0: unbounded)',
      registers,
      collect() {
        this.set(src().maxsize);
      },
    });
    new Gauge({
      name: 'berth_upstream_up',
      // Down in any worker is down.
      aggregator: 'min',
      help: 'Whether each upstream is reachable (1) or its circuit breaker is open (0)',
      labelNames: ['upstream'] as const,
      registers,
      collect() {
        for (const u of src().upstreams()) this.set({ upstream: u.name }, u.up ? 1 : 0);
      },
    });
    new Gauge({
      name: 'berth_queue_depth',
      // One store for every worker: summing the workers' reports would count it once per worker.
      aggregator: 'max',
      help: 'Pushed content waiting to be replicated upstream',
      registers,
      async collect() {
        this.set(await src().queueDepth());
      },
    });
    collectDefaultMetrics({ register: this.registry });
    // Series exist from the start, at zero, so rates and dashboards work before the first event.
    for (const source of ['cache', 'upstream']) this.m.served.inc({ source }, 0);
    for (const upstream of opts.upstreamNames) {
      this.m.upstream.inc({ upstream }, 0);
      this.m.tokens.inc({ upstream }, 0);
    }
    for (const reason of ['size', 'ttl', 'admin']) {
      this.m.evictions.inc({ reason }, 0);
      this.m.evictedBytes.inc({ reason }, 0);
    }
  }

  /** Connects the live values once the parts they read (store, cache, clients, queue) exist. */
  attach(sources: TelemetrySources): void {
    this.sources = sources;
  }

  /** Starts sampling the history ring buffer. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.history.sample(this.opts.now(), this.totals()), this.history.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  // ---- observers ----

  request(r: RequestRecord): void {
    this.m.requests.inc({ route: r.route, method: r.method, status: String(r.status), outcome: r.outcome ?? 'none' });
    this.m.duration.observe({ route: r.route }, r.seconds);
    if (r.outcome === 'joined') this.m.joined.inc();
    if (CONTENT_ROUTES.has(r.route) && r.outcome) this.requests[r.outcome]++;
  }

  /** A poll the fleet hub answered (fleet/hub.ts), timed inside the hub: what queueing at the caller adds is not in it. */
  hubPoll(seconds: number): void {
    this.m.hubPoll.observe(seconds);
  }

  served(route: string, outcome: Outcome | undefined, bytes: number, kernel?: boolean): void {
    if (!CONTENT_ROUTES.has(route) || !outcome || bytes <= 0) return;
    if (kernel) this.m.sendfile.inc(bytes);
    if (outcome === 'miss') {
      this.bytesFromUpstream += bytes;
      this.m.served.inc({ source: 'upstream' }, bytes);
      return;
    }
    this.bytesFromCache += bytes;
    this.m.served.inc({ source: 'cache' }, bytes);
    if (outcome !== 'local') {
      this.wanBytesSaved += bytes;
      this.m.saved.inc(bytes);
    }
  }

  upstreamBytes(upstream: string, bytes: number): void {
    this.upstreamBytesBy.set(upstream, (this.upstreamBytesBy.get(upstream) ?? 0) + bytes);
    this.m.upstream.inc({ upstream }, bytes);
  }

  evicted(reason: string, count: number, bytes: number): void {
    this.m.evictions.inc({ reason }, count);
    this.m.evictedBytes.inc({ reason }, bytes);
  }

  signatureChecked(result: 'valid' | 'denied' | 'warned'): void {
    this.m.signatures.inc({ result });
  }

  tokenRefreshed(upstream: string): void {
    this.m.tokens.inc({ upstream });
  }

  // ---- readers ----

  /** The Prometheus text exposition of this registry. */
  async metrics(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** GET /api/v1/stats */
  async stats(): Promise<Record<string, unknown>> {
    const r = this.requests;
    const answered = r.hit + r.miss + r.joined + r.stale;
    const store = await this.sources.store();
    return {
      uptimeSeconds: Math.floor((this.opts.now() - this.startedAt) / 1000),
      requests: { ...r },
      hitRatio: answered === 0 ? 0 : (r.hit + r.joined + r.stale) / answered,
      bytesServed: { fromCache: this.bytesFromCache, fromUpstream: this.bytesFromUpstream },
      upstreamBytes: Object.fromEntries(this.upstreamBytesBy),
      wanBytesSaved: this.wanBytesSaved,
      fillsInFlight: this.sources.fillsInFlight(),
      queueDepth: await this.sources.queueDepth(),
      store: { bytes: store.bytes, maxsize: this.sources.maxsize, blobs: store.blobs },
    };
  }

  private totals(): HistoryTotals {
    const r = this.requests;
    return { hit: r.hit, miss: r.miss, joined: r.joined, stale: r.stale, bytesFromCache: this.bytesFromCache, bytesFromUpstream: this.bytesFromUpstream };
  }
}
