/** @module util/first-answer — runs start-up work the first answers do not need once the first response is sent, or after a while without a request. */
import type { EventEmitter } from 'node:events';

/**
 * Work a serving process does once at start but no request needs at once (binding sendfile(2)
 * through koffi, checking the upstreams) takes the event loop for tens of milliseconds; run as
 * soon as the process listens, it held up the first answer, which is what a readiness probe or
 * the first node waits for (docs/performance.md). It runs after the first response has gone, or
 * `fallbackMs` after listening when no request comes; the timer keeps no process alive.
 */
export function afterFirstAnswer(servers: readonly EventEmitter[], work: () => void, fallbackMs = 1000): () => void {
  let done = false;
  const onRequest = (_req: unknown, res: EventEmitter) => res.once('close', run);
  const timer = setTimeout(() => run(), fallbackMs);
  timer.unref();
  function run(): void {
    if (done) return;
    done = true;
    clearTimeout(timer);
    for (const s of servers) s.off('request', onRequest);
    // After the response's last write has been handed to the socket.
    setImmediate(work);
  }
  for (const s of servers) s.on('request', onRequest);
  // Stops waiting (the process closes before anything came): the work is not run.
  return () => {
    done = true;
    clearTimeout(timer);
    for (const s of servers) s.off('request', onRequest);
  };
}
