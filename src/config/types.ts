/** @module config/types — the typed, frozen configuration every other module receives. */

import type { DailyWindow, HubConfig, SiteConfig } from './fleet.js';

export type PushMode = 'readonly' | 'local' | 'write-through' | 'write-behind';
export type AccessAction = 'pull' | 'push' | 'delete' | '*';
export type OutageMode = 'lastknown' | 'deny';

/** Bounds on client connections (docs/security.md: Request limits). */
export interface ConnectionLimits {
  /** The request line and headers must arrive within this long (slowloris). */
  readonly headersTimeoutMs: number;
  /** A connection with no byte moving either way for this long is closed; a slow transfer that moves is not idle. */
  readonly idleTimeoutMs: number;
  /** Open connections in all; beyond it new ones are answered 503 and closed. */
  readonly maxConnections: number;
  /** Open connections from one client address; beyond it 429. */
  readonly maxConnectionsPerClient: number;
}

/** One `auth.rules` entry: these users may do these actions on these repositories. */
export interface AccessRule {
  /** User names; `anonymous` is a client without credentials, `*` any authenticated user. */
  readonly users: readonly string[];
  /** Repository patterns as the upstream names them; `*` matches any characters, `/` included. */
  readonly repositories: readonly string[];
  readonly actions: readonly AccessAction[];
  /** Name of the upstream the rule is about; absent = every upstream (and the local registry). */
  readonly upstream?: string;
}

/** One central registry berth mirrors. `proxy:` becomes a single upstream named "default". */
export interface UpstreamConfig {
  readonly name: string;
  /** Base URL without trailing slash, e.g. https://harbor.xing.com */
  readonly remoteurl: string;
  readonly username?: string;
  /** Password (from `password` or read from `passwordfile`). Never logged. */
  readonly password?: string;
  readonly hosts: readonly string[];
  readonly prefix?: string;
  readonly default: boolean;
  /** PEM text of a CA bundle to trust for this upstream. */
  readonly ca?: string;
  readonly insecure: boolean;
  /** Address to connect to for remoteurl's host instead of looking the name up (TLS still checks the name). */
  readonly resolve?: string;
  /** PEM client certificate and key presented to this upstream (mutual TLS). */
  readonly clientcert?: { readonly certificate: string; readonly key: string };
  /** Token realm hosts (host or host:port) trusted besides the upstream's registrable domain. */
  readonly tokenrealms: readonly string[];
  /** Clients' own credentials are checked against this upstream before the cache serves them. */
  readonly passthrough?: { readonly ttlMs: number; readonly outage: OutageMode };
  /** Milliseconds a tag is served from cache before revalidating upstream. */
  readonly tagttlMs: number;
  /** On a manifest fetched from upstream, start fetching the blobs it names at once. */
  readonly prefetch: boolean;
  /** Milliseconds since last pull after which content may be dropped; 0 = never. */
  readonly ttlMs: number;
  readonly pushmode: PushMode;
  /** Bytes per second berth may draw from this upstream in all; node pulls go first. */
  readonly ratelimit?: number;
  /** Background work (warm-up, pre-heat, write-behind) runs only inside this daily window. */
  readonly backgroundwindow?: DailyWindow;
}

export interface Listener {
  /** '' means all interfaces. */
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly certificate: string; readonly key: string };
}

export interface BerthConfig {
  readonly log: {
    readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
    readonly fields: Readonly<Record<string, string>>;
    readonly accesslog: boolean;
  };
  readonly storage: {
    readonly rootdirectory: string;
    /** Bytes; 0 = unbounded. */
    readonly maxsize: number;
    readonly lowwatermark: number;
    /** Bytes held back for metadata writes on a full disk (storage/disk-space); 0 = none. */
    readonly reserve: number;
    readonly deleteEnabled: boolean;
    /** distribution's storage.maintenance.uploadpurging: abandoned uploads are removed. */
    readonly uploadpurging: { readonly enabled: boolean; readonly ageMs: number; readonly intervalMs: number };
  };
  readonly http: {
    /** host and port to listen on; host '' means all interfaces. */
    readonly host: string;
    readonly port: number;
    readonly headers: Readonly<Record<string, readonly string[]>>;
    readonly tls?: { readonly certificate: string; readonly key: string };
    /** `http.listeners`: more addresses served beside addr/tls (e.g. TLS on :443 and plain :5000). */
    readonly listeners: readonly Listener[];
    /** Header and idle timeouts, connection bounds (http.headerstimeout, idletimeout, maxconnections, maxconnectionsperclient). */
    readonly limits: ConnectionLimits;
    /** `http.workers`: serving processes sharing store and addresses; `auto` = one per core (docs/large-sites.md: Every core). */
    readonly workers: number | 'auto';
    /** `http.sendfile` (default true): stored blobs reach plain TCP clients by sendfile(2) where it loads (storage/zero-copy). */
    readonly sendfile: boolean;
  };
  readonly upstreams: readonly UpstreamConfig[];
  readonly upstreamTimeouts: {
    readonly connectMs: number;
    readonly firstByteMs: number;
    readonly idleMs: number;
  };
  readonly auth?: {
    readonly htpasswd?: { readonly realm: string; readonly path: string };
    /** When present, only what a rule allows is allowed. */
    readonly rules?: readonly AccessRule[];
  };
  /** Credentials for the admin API (/api/v1/); without them it is open on the listen address. */
  readonly admin?: { readonly username: string; readonly password: string };
  /**
   * `admin.open: true`: the admin API is open to anyone who reaches the listen address. Without
   * it and without credentials, the API is open only while no client auth is configured; with
   * `auth:` it answers loopback clients only.
   */
  readonly adminOpen?: boolean;
  /**
   * `admin.trustloopback`: a caller on this host (loopback peer, loopback Host, no proxy headers)
   * may use the admin API without credentials. Absent: true only while neither client auth
   * (`auth:`, `passthroughauth`) nor admin credentials are configured.
   */
  readonly adminTrustLoopback?: boolean;
  /** Images kept pinned and refreshed on a schedule (`warm:`). */
  readonly warm: WarmConfig;
  /** This berth is a fleet's hub (docs/design.md §12). */
  readonly hub?: HubConfig;
  /** This berth is a site reporting to a hub. */
  readonly site?: SiteConfig;
  /** One replica of a site's several (`cluster:` with `redis:`); absent: a replica alone. */
  readonly cluster?: ClusterConfig;
}

export interface ClusterConfig {
  /** How the other replicas reach this one. */
  readonly advertise: string;
  readonly secret: string;
  /** Replicas with the same name form one site (the Redis key prefix). */
  readonly name: string;
  readonly redis: {
    /** One server, or Sentinels when `mastername` is set. */
    readonly addrs: ReadonlyArray<{ readonly host: string; readonly port: number }>;
    readonly mastername?: string;
    readonly username?: string;
    readonly password?: string;
    readonly sentinelUsername?: string;
    readonly sentinelPassword?: string;
    readonly db: number;
    readonly connectMs: number;
    /** Every command gives up after this long. */
    readonly commandMs: number;
    readonly tls?: { readonly certificate?: string; readonly key?: string; readonly ca?: string; readonly insecure: boolean };
  };
}

export interface WarmConfig {
  /** Milliseconds between refreshes; 0 = warm once at start-up only. */
  readonly intervalMs: number;
  /** `[registry/]repository[:tag|@digest]` */
  readonly images: readonly string[];
  /** `os/arch[/variant]`; empty = berth's default (linux/amd64). */
  readonly platforms: readonly string[];
  readonly allPlatforms: boolean;
}
