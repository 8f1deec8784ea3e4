/**
 * @module upstream/metered — an undici interceptor that passes every response byte (and every
 * streamed request body byte) of an upstream through its WAN budget. Reading pauses while the
 * budget says wait, so TCP slows the sender: the cap holds on the link, not only inside berth.
 */
import { Readable, Transform, type Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { ByteBudget, WorkPriority } from './budget.js';

type Controller = Dispatcher.DispatchController;
type Handler = Dispatcher.DispatchHandler;

/** The controller the inner handler sees: its pause and the budget's pause combine. */
class Gate implements Controller {
  private innerPaused = false;
  private held = false;

  constructor(readonly real: Controller) {}

  get aborted(): boolean {
    return this.real.aborted;
  }
  get paused(): boolean {
    return this.real.paused;
  }
  get reason(): Error | null {
    return this.real.reason;
  }
  abort(reason: Error): void {
    this.real.abort(reason);
  }

  pause(): void {
    this.innerPaused = true;
    this.real.pause();
  }

  resume(): void {
    this.innerPaused = false;
    if (!this.held) this.real.resume();
  }

  hold(): void {
    this.held = true;
    this.real.pause();
  }

  release(): void {
    this.held = false;
    if (!this.innerPaused) this.real.resume();
  }
}

class MeteredHandler implements Handler {
  private gate: Gate | undefined;
  private readonly queue: Buffer[] = [];
  private draining = false;
  private ended: { trailers: Record<string, string | string[] | undefined> } | undefined;
  private dead = false;

  constructor(
    private readonly inner: Handler,
    private readonly budget: ByteBudget,
    /** Read per chunk: a fill that a client starts waiting for turns foreground mid-request. */
    private readonly background: () => boolean,
  ) {}

  private gateFor(c: Controller): Gate {
    if (!this.gate || this.gate.real !== c) this.gate = new Gate(c);
    return this.gate;
  }

  onRequestStart(c: Controller, context: unknown): void {
    this.inner.onRequestStart?.(this.gateFor(c), context);
  }

  onRequestUpgrade(c: Controller, status: number, headers: Record<string, string | string[] | undefined>, socket: Duplex): void {
    this.inner.onRequestUpgrade?.(this.gateFor(c), status, headers, socket);
  }

  onResponseStart(c: Controller, status: number, headers: Record<string, string | string[] | undefined>, message: string): void {
    this.inner.onResponseStart?.(this.gateFor(c), status, headers, message);
  }

  onResponseData(c: Controller, chunk: Buffer): void {
    const gate = this.gateFor(c);
    if (!this.draining && this.budget.tryTake(chunk.length, this.background())) {
      this.inner.onResponseData?.(gate, chunk);
      return;
    }
    this.queue.push(chunk);
    gate.hold();
    // A failure while paced must end the transfer, not leave it held.
    if (!this.draining) this.drain(gate).catch((err: Error) => gate.real.abort(err));
  }

  onResponseEnd(c: Controller, trailers: Record<string, string | string[] | undefined>): void {
    if (this.draining) this.ended = { trailers };
    else this.inner.onResponseEnd?.(this.gateFor(c), trailers);
  }

  onResponseError(c: Controller, err: Error): void {
    this.dead = true;
    this.queue.length = 0;
    this.inner.onResponseError?.(this.gateFor(c), err);
  }

  private async drain(gate: Gate): Promise<void> {
    this.draining = true;
    while (this.queue.length > 0) {
      const chunk = this.queue.shift()!;
      await this.budget.take(chunk.length, this.background());
      if (this.dead) return;
      this.inner.onResponseData?.(gate, chunk);
    }
    this.draining = false;
    if (this.ended) this.inner.onResponseEnd?.(gate, this.ended.trailers);
    else gate.release();
  }
}

/** A request body stream that passes the budget chunk by chunk. */
function meteredBody(body: Readable, budget: ByteBudget, background: () => boolean): Readable {
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      budget.take(chunk.length, background()).then(() => done(null, chunk), done);
    },
  });
  body.once('error', (err) => t.destroy(err));
  return body.pipe(t);
}

/** The interceptor for `agent.compose(...)`: the priority is read where the request is made. */
export function meteredInterceptor(budget: ByteBudget, priority: WorkPriority): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    const background = priority.current();
    const body = opts.body instanceof Readable ? meteredBody(opts.body, budget, background) : opts.body;
    return dispatch({ ...opts, body }, new MeteredHandler(handler, budget, background));
  };
}
