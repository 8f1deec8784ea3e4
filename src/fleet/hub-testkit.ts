/** @module fleet/hub-testkit — a hub on a SQLite state in a temp dir (or the state given) behind a loopback HTTP server, for the fleet's tests. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { SqliteHubState } from '../storage/hub-db.js';
import type { HubState } from '../ports/hub-state.js';
import { createHub, type Hub, type HubDeps } from './hub.js';

export interface ServedHub<S extends HubState = SqliteHubState> {
  server: Server;
  url: string;
  hub: Hub;
  state: S;
  /** Stops the server and the hub. */
  close: () => Promise<void>;
}

/** Starts a hub with a silent logger, the wall clock and a fresh store; `deps` overrides the logger, the clock or adds the rest. */
export async function serveHub(deps: Partial<Omit<HubDeps, 'state'>> & Pick<HubDeps, 'token'>): Promise<ServedHub>;
export async function serveHub<S extends HubState>(deps: Partial<Omit<HubDeps, 'state'>> & Pick<HubDeps, 'token'>, state: S): Promise<ServedHub<S>>;
export async function serveHub(deps: Partial<Omit<HubDeps, 'state'>> & Pick<HubDeps, 'token'>, given?: HubState): Promise<ServedHub<HubState>> {
  const state = given ?? new SqliteHubState(mkdtempSync(join(tmpdir(), 'berth-hub-')));
  const hub = createHub({ logger: pino({ level: 'silent' }), now: () => Date.now(), state, ...deps });
  const server = createServer((req, res) => {
    hub
      .handle(req, res, new URL(req.url ?? '/', 'http://hub'))
      .then((handled) => {
        if (!handled) res.writeHead(404).end();
      })
      .catch((err: unknown) => res.destroy(err as Error));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await hub.close();
  };
  return { server, url, hub, state, close };
}
