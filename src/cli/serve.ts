/** @module cli/serve — `berth serve`: load config, start the cache, stop cleanly on SIGTERM/SIGINT. */
import { pino } from 'pino';
import type { BerthConfig } from '../config/types.js';
import { createApp } from '../app.js';

export interface ServeIo {
  readonly signals: NodeJS.EventEmitter;
  /** Where uncaught exceptions and unhandled rejections are reported (the process). */
  readonly faults?: NodeJS.EventEmitter;
}

/** The log message of a fault no handler caught; the test fixtures fail any run that logs it. */
export const UNCAUGHT_MESSAGE = 'uncaught error (a bug in berth): the request it came from is lost; berth keeps serving';

export function createLogger(config: BerthConfig) {
  return pino({ level: config.log.level, base: { ...config.log.fields }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** Runs until a stop signal; resolves with the exit status. */
export async function serve(config: BerthConfig, warnings: readonly string[], io: ServeIo): Promise<number> {
  const logger = createLogger(config);
  for (const w of warnings) logger.warn(w);
  // One request's fault must not end the process and every other client's transfer with it.
  const onFault = (err: unknown) => logger.fatal({ err }, UNCAUGHT_MESSAGE);
  io.faults?.on('uncaughtException', onFault);
  io.faults?.on('unhandledRejection', onFault);
  const app = await createApp(config, { logger, now: Date.now });
  let address;
  try {
    address = await app.listen();
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'cannot listen');
    await app.close(0);
    return 1;
  }
  logger.info(
    {
      address: `${address.address}:${address.port}`,
      tls: Boolean(config.http.tls),
      ...(config.http.listeners.length > 0 ? { listeners: config.http.listeners.map((l) => `${l.host}:${l.port}${l.tls ? ' (TLS)' : ''}`) } : {}),
      root: config.storage.rootdirectory,
      upstreams: config.upstreams.map((u) => ({ name: u.name, remoteurl: u.remoteurl })),
    },
    'berth listening',
  );
  // After listening: a loop back to this berth is only visible once it answers.
  void app.checkUpstreams();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping: no new connections, finishing transfers in flight');
      resolve();
    };
    io.signals.once('SIGTERM', () => stop('SIGTERM'));
    io.signals.once('SIGINT', () => stop('SIGINT'));
    // Certificates and htpasswd are re-read in place; open connections stay up.
    io.signals.on('SIGHUP', () => app.reload('SIGHUP'));
  });
  await app.close();
  logger.info('stopped');
  return 0;
}
