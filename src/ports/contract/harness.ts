/** @module ports/contract/harness — one test per case, each on a fresh fixture that is closed whatever the outcome. */
import { test } from 'node:test';

export function suite<F extends { close(): Promise<void> }>(name: string, open: () => Promise<F>): (title: string, body: (f: F) => Promise<void>) => void {
  return (title, body) => {
    test(`${name}: ${title}`, async () => {
      const f = await open();
      try {
        await body(f);
      } finally {
        await f.close();
      }
    });
  };
}
