/** @module util/undici — undici's Agent and request() without the rest of the package: its index also loads fetch, WebSocket, the HTTP cache and the mock agents, about 8 MiB of resident memory and a third of start-up that berth never uses. */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

// undici is pinned to an exact version (package.json): these files are its own, as its index loads them.
const load = createRequire(import.meta.url);
const Dispatcher = load('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher;
const api = load('undici/lib/api/index.js') as { request: (this: Undici.Dispatcher, opts: object) => Promise<unknown> };
const { getGlobalDispatcher } = load('undici/lib/global.js') as { getGlobalDispatcher: () => Undici.Dispatcher };
const { parseURL } = load('undici/lib/core/util.js') as { parseURL: (url: string | URL) => URL };

// What undici's index does once: every dispatcher gets request(), stream(), pipeline() and the rest.
Object.assign(Dispatcher.prototype, api);

export const Agent = load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export type Agent = Undici.Agent;

/** undici's request(url, options): the same checks and defaults as the package's own, for a URL (berth never passes `path` apart). */
export const request = ((url: string | URL, opts: ({ dispatcher?: Undici.Dispatcher; method?: string; body?: unknown } & object) | undefined) => {
  const parsed = parseURL(url);
  const { dispatcher = getGlobalDispatcher(), ...rest } = opts ?? {};
  return api.request.call(dispatcher, {
    ...rest,
    origin: parsed.origin,
    path: parsed.search ? `${parsed.pathname}${parsed.search}` : parsed.pathname,
    method: rest.method || (rest.body ? 'PUT' : 'GET'),
  });
}) as typeof Undici.request;
