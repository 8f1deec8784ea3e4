/** @module bench/push — push latency per pushmode for a 50 MiB image (skopeo copy) and the write-behind drain time after an outage. */
/*
 * Run with `npm run build && node dist/bench/push.js`. Every push is a fresh image (no blob the
 * registry already has), on loopback, and again with berth's link to the central registry limited
 * to WAN_RATE (a relay), which is where the modes differ.
 */
import { startRegistry } from '../test/fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../test/fixtures/image.js';
import { startBerth } from '../test/fixtures/berth.js';
import { startRelay } from '../test/fixtures/relay.js';
import { makeTempDir, removeDir } from '../test/fixtures/proc.js';
import { pushModesConfig, PREFIX, waitForDrain } from '../test/fixtures/push.js';

const MiB = 1024 * 1024;
const WAN_RATE = 20 * MiB;
const creds = { username: 'admin', password: 'Harbor12345' };

async function timed<T>(run: () => Promise<T>): Promise<number> {
  const started = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function main(): Promise<void> {
  const registry = await startRegistry({ auth: 'token', users: { [creds.username]: creds.password } });
  const relay = await startRelay({ targetPort: registry.port });
  const authDir = await makeTempDir('berth-bench-push-');
  const berth = await startBerth({ config: pushModesConfig(authDir, relay.url, creds, { log: { level: 'warn' } }) });
  const plain = await startBerth({ config: { version: 0.1, log: { level: 'warn' } } });
  const images: BuiltImage[] = [];
  const fresh = async () => {
    const img = await buildImage({ layers: 5, layerSize: 10 * MiB, tag: 'v1' });
    images.push(img);
    return img;
  };
  const rows: Array<[string, string]> = [];
  const ms = (n: number) => `${(n / 1000).toFixed(2)} s`;
  try {
    for (const [label, rate] of [
      ['loopback', 0],
      [`link to the registry at ${WAN_RATE / MiB} MiB/s`, WAN_RATE],
    ] as const) {
      relay.configure({ upRateBytesPerSec: rate, rateBytesPerSec: rate });
      rows.push([
        `direct to the registry (baseline), ${label}`,
        ms(await timed(async () => pushImage(await fresh(), relay.url, `bench/direct-${rate}:v1`, creds))),
      ]);
      if (rate === 0) rows.push(['plain registry (no upstream)', ms(await timed(async () => pushImage(await fresh(), plain.url, 'bench/plain:v1')))]);
      for (const mode of ['local', 'write-through', 'write-behind'] as const) {
        const img = await fresh();
        const repo = `${PREFIX[mode]}/bench/${mode}-${rate}:v1`;
        const pushMs = await timed(() => pushImage(img, berth.url, repo));
        rows.push([`${mode}, ${label}`, ms(pushMs)]);
        if (mode === 'write-behind') {
          const drainMs = await timed(() => waitForDrain(berth, 600_000));
          rows.push([`  then in the registry (queue drained) after`, ms(drainMs)]);
        }
      }
    }
    relay.configure({ upRateBytesPerSec: 0, rateBytesPerSec: 0 });
    await registry.down();
    const img = await fresh();
    rows.push(['write-behind, registry down', ms(await timed(() => pushImage(img, berth.url, 'behind/bench/outage:v1')))]);
    // Long enough for backoff to have grown and the circuit breaker to be open.
    await new Promise((r) => setTimeout(r, 20_000));
    await registry.up();
    rows.push(['queue drain after the registry came back (50 MiB)', ms(await timed(() => waitForDrain(berth, 600_000)))]);
  } finally {
    await berth.stop();
    await plain.stop();
    await relay.stop();
    await registry.stop();
    await removeDir(authDir);
    for (const i of images) await i.remove();
  }
  const width = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(`skopeo copy of a 50 MiB image (5 layers of 10 MiB) into berth\n`);
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
