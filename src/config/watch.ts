/** @module config/watch — noticing that files named by the config (certificates, htpasswd) changed on disk. */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';

/** Editors and cert renewers write several times in a row; one reload after they settle. */
const SETTLE_MS = 250;

/**
 * Calls `onChange` once the files stop changing. Watches the directories, not the files, so a
 * file replaced by rename (certbot, editors) or a Kubernetes secret's `..data` symlink swap is
 * seen too. Returns a function that stops watching.
 */
export function watchFiles(files: readonly string[], onChange: () => void, logger: Logger): () => void {
  const byDir = new Map<string, Set<string>>();
  for (const f of files) {
    const names = byDir.get(dirname(f)) ?? new Set<string>();
    names.add(basename(f));
    byDir.set(dirname(f), names);
  }
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, SETTLE_MS);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const [dir, names] of byDir) {
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null || names.has(String(name)) || String(name).startsWith('..')) schedule();
      });
      w.on('error', (err) => logger.warn({ dir, err: err.message }, 'stopped watching a directory for changes; send SIGHUP to reload'));
      watchers.push(w);
    } catch (err) {
      logger.warn({ dir, err: (err as Error).message }, 'cannot watch directory for changes; send SIGHUP to reload');
    }
  }
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
