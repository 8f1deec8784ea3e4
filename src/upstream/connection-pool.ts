/** @module upstream/connection-pool — the connection pool for one upstream: its TLS trust, client certificate, timeouts and `resolve:` address. */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { Agent } from '../util/undici.js';
import type { UpstreamConfig } from '../config/types.js';

export interface AgentTimeouts {
  readonly connectMs: number;
  readonly firstByteMs: number;
  readonly idleMs: number;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
export type Lookup = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

/**
 * A lookup that answers `address` for `host` and asks DNS for every other name (token realms and
 * blob redirects live elsewhere). The TLS layer still checks the certificate against the name in
 * the URL, so `resolve:` changes where berth connects, never whom it trusts.
 */
export function pinnedLookup(host: string, address: string): Lookup {
  const family = isIP(address);
  const wanted = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return (hostname, options, callback) => {
    if (hostname.toLowerCase() !== wanted) return void dnsLookup(hostname, options, callback as never);
    // Node 20's happy-eyeballs connect asks for every address (`all: true`).
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

/** Options for `tls.connect`/`net.connect` shared by the pool and the start-up checks. */
export function connectOptions(config: UpstreamConfig, connectMs: number): Record<string, unknown> {
  const host = new URL(config.remoteurl).hostname;
  return {
    timeout: connectMs,
    ca: config.ca,
    rejectUnauthorized: !config.insecure,
    ...(config.clientcert ? { cert: config.clientcert.certificate, key: config.clientcert.key } : {}),
    ...(config.resolve !== undefined ? { lookup: pinnedLookup(host, config.resolve) } : {}),
  };
}

export function upstreamAgent(config: UpstreamConfig, timeouts: AgentTimeouts): Agent {
  return new Agent({
    connect: connectOptions(config, timeouts.connectMs),
    headersTimeout: timeouts.firstByteMs,
    bodyTimeout: timeouts.idleMs,
    keepAliveTimeout: 30_000,
  });
}
