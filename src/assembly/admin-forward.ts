/** @module assembly/admin-forward — one worker holds the admin state (warm jobs, hub, schedules); the others forward its paths to it over loopback. */
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { AdminHandler } from '../http/admin.js';
import { FORWARDED_CLIENT, sendApiError } from '../http/admin-io.js';
import { ApiError } from '../oci/errors.js';
import { unavailable } from '../oci/error-catalogue.js';
import { isHubPath } from '../fleet/hub.js';

/** Carries the client's address from the forwarding worker (the loopback-only rule reads it). */
const CLIENT_HEADER = 'x-berth-worker-client';

/** Paths the admin handler (with the hub in front) answers from state held in one process. */
function isAdminPath(path: string, hub: boolean): boolean {
  return path === '/metrics' || path === '/api' || path.startsWith('/api/') || (hub && isHubPath(path));
}

/**
 * The lead worker's private listener: loopback, a port of its own (not shared through the
 * cluster), answering only the admin handler for requests the other workers forward.
 */
export async function listenPrivately(admin: AdminHandler, logger: Logger): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = http.createServer((req, res) => {
    const client = req.headers[CLIENT_HEADER];
    (req as IncomingMessage & { [FORWARDED_CLIENT]?: string })[FORWARDED_CLIENT] = typeof client === 'string' ? client : '';
    const url = new URL(req.url ?? '/', 'http://berth.invalid');
    admin(req, res, url)
      .then((handled) => {
        if (!handled) sendApiError(res, new ApiError(404, 'NOT_FOUND', `no such admin endpoint: ${url.pathname.slice(0, 200)}`), req.method === 'HEAD');
      })
      .catch((err: Error) => {
        logger.error({ err: err.message, path: url.pathname }, 'forwarded admin request failed');
        sendApiError(res, err, req.method === 'HEAD');
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** How long an admin request waits for a lead that is starting (or being replaced) before this worker answers it itself. */
const LEAD_WAIT_MS = 10_000;

/** A non-lead worker's admin handler: admin paths go to the lead, the rest (/readyz) are answered here. */
export function forwardingAdmin(local: AdminHandler, leadPort: (waitMs: number) => Promise<number | undefined>, hub: boolean): AdminHandler {
  return async (req, res, url) => {
    if (!isAdminPath(url.pathname, hub)) return local(req, res, url);
    const port = await leadPort(LEAD_WAIT_MS);
    if (port === undefined) return local(req, res, url);
    await forward(req, res, port);
    return true;
  };
}

function forward(req: IncomingMessage, res: ServerResponse, port: number): Promise<void> {
  return new Promise((resolve) => {
    const headers = { ...req.headers, [CLIENT_HEADER]: req.socket.remoteAddress ?? '' };
    const out = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
      answer.once('end', () => resolve());
      answer.once('error', () => {
        res.destroy();
        resolve();
      });
    });
    out.once('error', (err) => {
      if (!res.headersSent) sendApiError(res, unavailable(`the admin worker did not answer: ${err.message}`), req.method === 'HEAD');
      else res.destroy();
      resolve();
    });
    req.pipe(out);
  });
}
