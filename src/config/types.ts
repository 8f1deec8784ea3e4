/**
 * @module config/types — the typed, frozen configuration every other module receives. Where a value is a key's
 * value as config/schema checks it, its type is inferred from the schema; where config/load transforms (units,
 * renames, files read), the field names the key it comes from and the key's meaning is in the schema.
 */

import type { z } from 'zod';
import type { ListenAddr } from './fields.js';
import type { ClusterConfig } from './cluster.js';
import type { HubConfig, SiteConfig } from './fleet.js';
import type { VerifyRule } from './verify.js';
import type { accessRuleSchema, BerthDocument, upstreamEntrySchema } from './schema.js';

/** Declared beside the `cluster:` section's checks; named here with the rest of the configuration's types. */
export type { ClusterConfig };

/** Deeply read-only: the loaded configuration is frozen. */
type Frozen<T> = T extends readonly (infer E)[] ? readonly Frozen<E>[] : T extends object ? { readonly [K in keyof T]: Frozen<T[K]> } : T;
type Section<K extends keyof BerthDocument> = NonNullable<BerthDocument[K]>;
type UpstreamDoc = z.output<typeof upstreamEntrySchema>;
type RuleDoc = z.output<typeof accessRuleSchema>;
type ListenerDoc = NonNullable<Section<'http'>['listeners']>[number];

export type PushMode = NonNullable<UpstreamDoc['pushmode']>;
export type AccessAction = RuleDoc['actions'][number];
export type OutageMode = NonNullable<UpstreamDoc['passthroughoutage']>;
type TlsFiles = Frozen<Required<Pick<NonNullable<Section<'http'>['tls']>, 'certificate' | 'key'>>>;

/** `http.headerstimeout`, `idletimeout` (in ms), `maxconnections`, `maxconnectionsperclient`. */
export interface ConnectionLimits {
  readonly headersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
}

/** One `auth.rules` entry, `repositories` defaulted. */
export type AccessRule = Frozen<Omit<RuleDoc, 'repositories'> & Required<Pick<RuleDoc, 'repositories'>>>;

/** One central registry berth mirrors: an `upstreams:` entry, or `proxy:` as the one named "default". */
export type UpstreamConfig = Frozen<
  Pick<UpstreamDoc, 'name' | 'remoteurl' | 'username' | 'prefix' | 'resolve' | 'ratelimit' | 'backgroundwindow'> &
    Required<Pick<UpstreamDoc, 'hosts' | 'default' | 'insecure' | 'tokenrealms' | 'prefetch' | 'rangefetch' | 'pushmode'>> & {
      /** From `password`, `passwordfile` or `dockerconfig`. Never logged. */
      password?: string;
      /** The PEM text of the `ca` file. */
      ca?: string;
      /** The PEM texts of the `certificate` and `key` files. */
      clientcert?: { certificate: string; key: string };
      /** `passthroughauth: true`, with `passthroughttl` in ms and `passthroughoutage`. */
      passthrough?: { ttlMs: number; outage: OutageMode };
      /** `tagttl` in ms. */
      tagttlMs: number;
      /** `ttl` in ms; 0 = never. */
      ttlMs: number;
      /** `rangequiet` in ms: how long a blob's ranges stay quiet before the fill they started runs. */
      rangequietMs: number;
    }
>;

/** `http.addr` with `http.tls`, or one `http.listeners` entry; host '' means all interfaces. */
export type Listener = Frozen<ListenAddr & Omit<ListenerDoc, 'addr'>>;

export interface BerthConfig {
  readonly log: {
    readonly level: NonNullable<Section<'log'>['level']>;
    readonly fields: Frozen<NonNullable<Section<'log'>['fields']>>;
    /** Not `log.accesslog.disabled`. */
    readonly accesslog: boolean;
  };
  readonly storage: {
    /** `storage.filesystem.rootdirectory`, absolute. */
    readonly rootdirectory: string;
    /** Bytes; 0 = unbounded. */
    readonly maxsize: number;
    readonly lowwatermark: number;
    /** Bytes. */
    readonly reserve: number;
    /** `storage.delete.enabled`. */
    readonly deleteEnabled: boolean;
    /** `storage.maintenance.uploadpurging`, durations in ms. */
    readonly uploadpurging: { readonly enabled: boolean; readonly ageMs: number; readonly intervalMs: number };
    /** `storage.maintenance.keptranges.age` in ms (0 = only maxsize removes them). */
    readonly keptranges: { readonly ageMs: number };
  };
  readonly http: {
    /** `http.addr`; host '' means all interfaces. */
    readonly host: string;
    readonly port: number;
    readonly headers: Frozen<NonNullable<Section<'http'>['headers']>>;
    readonly tls?: TlsFiles;
    readonly listeners: readonly Listener[];
    readonly limits: ConnectionLimits;
    readonly workers: NonNullable<Section<'http'>['workers']>;
    readonly sendfile: boolean;
  };
  readonly upstreams: readonly UpstreamConfig[];
  /** Not configurable: how long upstream requests may take to connect, answer and move. */
  readonly upstreamTimeouts: {
    readonly connectMs: number;
    readonly firstByteMs: number;
    readonly idleMs: number;
  };
  readonly auth?: {
    readonly htpasswd?: Frozen<Required<NonNullable<Section<'auth'>['htpasswd']>>>;
    readonly rules?: readonly AccessRule[];
    /** `auth.token` without `realm`: berth issues and checks bearer tokens itself (docs/design.md §7). */
    readonly token?: {
      readonly service: string;
      readonly expirationMs: number;
      /** PEM private key file; generated on first start when it is the default one. */
      readonly key: string;
      readonly generated: boolean;
    };
  };
  /** `admin.username` with the password from `admin.password` or `admin.passwordfile`. */
  readonly admin?: { readonly username: string; readonly password: string };
  /** `admin.open`. */
  readonly adminOpen?: boolean;
  /** `admin.trustloopback` as written; absent when not set (its default depends on other keys). */
  readonly adminTrustLoopback?: boolean;
  readonly warm: WarmConfig;
  /** `verify:`, keys read (docs/signatures.md); empty: nothing is verified. */
  readonly verify: readonly VerifyRule[];
  /** This berth is a fleet's hub (docs/design.md §12). */
  readonly hub?: HubConfig;
  readonly site?: SiteConfig;
  /** `cluster:` with `redis:`; absent: a replica alone. */
  readonly cluster?: ClusterConfig;
}

/** `warm:`, `interval` in ms. */
export interface WarmConfig {
  readonly intervalMs: number;
  readonly images: Frozen<NonNullable<Section<'warm'>['images']>>;
  readonly platforms: Frozen<NonNullable<Section<'warm'>['platforms']>>;
  /** `warm.allplatforms`. */
  readonly allPlatforms: boolean;
}
