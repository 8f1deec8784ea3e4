/** @module util/undici — undici's Agent and request() without the rest of the package, loaded at the first upstream request instead of at start-up. */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

// undici is pinned to an exact version (package.json): these files are its own, as its index loads them.
// Its index also loads fetch, WebSocket, the HTTP cache and the mock agents (about 8 MiB of resident
// memory and a third of start-up) that berth never uses; and even the agent and request files cost
// about 50 ms of CPU (node:http2 among them), so they are required at first use, not when berth
// starts: a berth is ready before it has asked an upstream anything. require's cache keeps them.
const load = createRequire(import.meta.url);
const Dispatcher = load('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher;

interface Loaded {
  readonly Agent: typeof Undici.Agent;
  readonly request: (this: Undici.Dispatcher, opts: object) => Promise<unknown>;
  readonly getGlobalDispatcher: () => Undici.Dispatcher;
  readonly parseURL: (url: string | URL) => URL;
}

function undici(): Loaded {
  const api = load('undici/lib/api/index.js') as { request: Loaded['request'] };
  // What undici's index does once: every dispatcher gets request(), stream(), pipeline() and the rest.
  if (Dispatcher.prototype.request !== api.request) Object.assign(Dispatcher.prototype, api);
  return {
    Agent: load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent,
    request: api.request,
    getGlobalDispatcher: (load('undici/lib/global.js') as { getGlobalDispatcher: Loaded['getGlobalDispatcher'] }).getGlobalDispatcher,
    parseURL: (load('undici/lib/core/util.js') as { parseURL: Loaded['parseURL'] }).parseURL,
  };
}

/**
 * undici's Agent, created at its first request: until then it holds only its options, so an
 * upstream configured but not yet asked costs no undici code. compose() binds this dispatch, and
 * close()/destroy() of an agent never used resolve at once.
 */
class LazyAgent extends Dispatcher {
  private agent: Undici.Agent | undefined;

  constructor(private readonly options?: Undici.Agent.Options) {
    super();
  }

  private started(): Undici.Agent {
    this.agent ??= new (undici().Agent)(this.options);
    return this.agent;
  }

  override dispatch(opts: Undici.Dispatcher.DispatchOptions, handler: Undici.Dispatcher.DispatchHandler): boolean {
    return this.started().dispatch(opts, handler);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    return settle(this.agent ? this.agent.close() : Promise.resolve(), callback);
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null);
    return settle(this.agent ? this.agent.destroy(err) : Promise.resolve(), typeof a === 'function' ? a : b);
  }
}

/** undici's two forms: a promise, or a callback called when done. */
function settle(done: Promise<void>, callback: (() => void) | undefined): Promise<void> | void {
  if (!callback) return done;
  void done.then(callback, callback);
}

export const Agent = LazyAgent as unknown as typeof Undici.Agent;
export type Agent = Undici.Agent;

/** undici's request(url, options): the same checks and defaults as the package's own, for a URL (berth never passes `path` apart). */
export const request = ((url: string | URL, opts: ({ dispatcher?: Undici.Dispatcher; method?: string; body?: unknown } & object) | undefined) => {
  const u = undici();
  const parsed = u.parseURL(url);
  const { dispatcher = u.getGlobalDispatcher(), ...rest } = opts ?? {};
  return u.request.call(dispatcher, {
    ...rest,
    origin: parsed.origin,
    path: parsed.search ? `${parsed.pathname}${parsed.search}` : parsed.pathname,
    method: rest.method || (rest.body ? 'PUT' : 'GET'),
  });
}) as typeof Undici.request;
