/** @module assembly/http-side — the listeners of `http.addr` and `http.listeners`: their servers, certificate and htpasswd reloads, listening and a graceful close. */
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { AccessControl } from '../auth/access.js';
import type { BerthConfig, Listener } from '../config/types.js';
import { watchFiles } from '../config/watch.js';
import { createServer, type ServerDeps } from '../http/server.js';
import { reloadTls } from '../http/tls.js';

export interface HttpSide {
  /** The `http.addr` listener; `servers` holds it and every `http.listeners` entry. */
  readonly server: Server;
  readonly servers: readonly Server[];
  /** Listens on every listener; resolves with the bound address of `http.addr`. */
  listen(): Promise<AddressInfo>;
  /** Re-reads the TLS certificates and the htpasswd file. */
  reload(reason: string): void;
  /** Stops accepting and lets transfers finish up to the deadline. */
  close(deadlineMs: number): Promise<void>;
}

export function openHttpSide(config: BerthConfig, deps: ServerDeps, access: AccessControl, logger: Logger): HttpSide {
  const listeners: Listener[] = [
    { host: config.http.host, port: config.http.port, ...(config.http.tls ? { tls: config.http.tls } : {}) },
    ...config.http.listeners,
  ];
  const servers = listeners.map((l) => createServer(deps, l.tls));
  const reloadCertificate = (reason: string) => {
    listeners.forEach((l, i) => {
      if (l.tls) reloadTls(servers[i] as HttpsServer, l.tls, logger, reason);
    });
  };
  const watchers = [
    watchFiles(
      listeners.flatMap((l) => (l.tls ? [l.tls.certificate, l.tls.key] : [])),
      () => reloadCertificate('file changed'),
      logger,
    ),
    watchFiles(access.files, () => access.reload(), logger),
  ];
  return {
    server: servers[0]!,
    servers,
    listen: async () => {
      const bound: AddressInfo[] = [];
      for (const [i, l] of listeners.entries()) bound.push(await listenOn(servers[i]!, l));
      return bound[0]!;
    },
    reload: (reason) => {
      reloadCertificate(reason);
      access.reload();
    },
    close: async (deadlineMs) => {
      watchers.forEach((stop) => stop());
      const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      // Keep-alive connections go as soon as their response is done, not at the keep-alive timeout.
      servers.forEach((s) => s.closeIdleConnections());
      const sweep = setInterval(() => servers.forEach((s) => s.closeIdleConnections()), 100);
      const timer = setTimeout(() => servers.forEach((s) => s.closeAllConnections()), deadlineMs);
      await closed;
      clearInterval(sweep);
      clearTimeout(timer);
    },
  };
}

function listenOn(server: Server, l: Listener): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) => {
      // Ports below 1024 need root or CAP_NET_BIND_SERVICE; the image runs as uid 1000.
      const hint =
        err.code === 'EACCES' && l.port < 1024
          ? ` (ports below 1024 need root or CAP_NET_BIND_SERVICE: listen on a high port and map ${l.port} to it, see docs/install.md)`
          : '';
      reject(Object.assign(new Error(`cannot listen on ${l.host || '*'}:${l.port}: ${err.code ?? err.message}${hint}`), { code: err.code }));
    };
    server.once('error', fail);
    server.listen(l.port, l.host === '' ? undefined : l.host, () => {
      server.off('error', fail);
      resolve(server.address() as AddressInfo);
    });
  });
}
