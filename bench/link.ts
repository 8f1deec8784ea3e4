/**
 * @module bench/link — the throttled WAN link (test/fixtures/relay) in a process of its own: in the
 * bench's process, every curl it spawns (a few ms each, spawning blocks the event loop) would stall
 * the link and charge the cache under test for it.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startRelay } from '../test/fixtures/relay.js';

export interface Link {
  url: string;
  /** Bytes the link has carried towards the cache, as of the last report (every 10 ms). */
  bytesToClient(): number;
  /** When (epoch ms, the link process's clock reading) the link had first carried `bytes`, if it has. */
  reached(bytes: number): number | undefined;
  stop(): Promise<void>;
}

type FromChild = { url: string } | { bytes: number; at: number };

/** Starts the link process; it forwards to the central registry on 127.0.0.1:targetPort at rateBytesPerSec. */
export function startLink(targetPort: number, rateBytesPerSec: number): Promise<Link> {
  const child = fork(fileURLToPath(import.meta.url), ['--child', String(targetPort), String(rateBytesPerSec)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let bytes = 0;
  const samples: Array<{ bytes: number; at: number }> = [];
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise<Link>((resolve, reject) => {
    child.once('error', reject);
    void exited.then(() => reject(new Error('the link process exited before it listened')));
    child.on('message', (m: FromChild) => {
      if ('bytes' in m) {
        bytes = m.bytes;
        samples.push(m);
      } else
        resolve({
          url: m.url,
          bytesToClient: () => bytes,
          reached: (n) => samples.find((x) => x.bytes >= n)?.at,
          stop: async () => {
            child.kill('SIGTERM');
            await exited;
          },
        });
    });
  });
}

async function child(targetPort: number, rate: number): Promise<void> {
  const relay = await startRelay({ targetPort, rateBytesPerSec: rate });
  const send = (m: FromChild): void => void process.send?.(m);
  send({ url: relay.url });
  let last = -1;
  setInterval(() => {
    const b = relay.bytesToClient();
    if (b !== last) send({ bytes: (last = b), at: Date.now() });
  }, 10);
  process.once('SIGTERM', () => void relay.stop().finally(() => process.exit(0)));
  process.once('disconnect', () => void relay.stop().finally(() => process.exit(0)));
}

if (process.argv[2] === '--child') void child(Number(process.argv[3]), Number(process.argv[4]));
