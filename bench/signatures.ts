/** @module bench/signatures — the latency a verify: policy adds to a manifest GET, cold (first request) and warm. */
/*
 * Run with `npm run build && node dist/bench/signatures.js`. The same images are pushed to a
 * repository berth enforces signatures on (signed with cosign) and to one it does not check; each
 * manifest is asked for by tag once cold, then many times warm, and the two are compared. On
 * loopback, so the numbers are berth's own cost: a WAN adds its round trips to the cold one (the
 * `.sig` manifest and its payload are two more requests upstream). A verdict is reused for
 * VERDICT_TTL_MS; the last rows are the first requests after it ran out: signatures read from the store.
 */
import { startRegistry } from '../test/fixtures/registry.js';
import { buildImage, pushImage, type BuiltImage } from '../test/fixtures/image.js';
import { startBerth } from '../test/fixtures/berth.js';
import { generateKeyPair, sign } from '../test/fixtures/cosign.js';
import { makeTempDir, removeDir, sleep } from '../test/fixtures/proc.js';
import { VERDICT_TTL_MS } from '../src/cache/signature-policy.js';

const IMAGES = Number(process.env['SIG_BENCH_IMAGES'] ?? 8);
const WARM_ROUNDS = Number(process.env['SIG_BENCH_ROUNDS'] ?? 200);
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

async function get(url: string): Promise<number> {
  const started = process.hrtime.bigint();
  const res = await fetch(url, { headers: { accept: ACCEPT } });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function main(): Promise<void> {
  const work = await makeTempDir('berth-bench-sig-');
  const registry = await startRegistry({ auth: 'none' });
  const keys = await generateKeyPair(work);
  const images: BuiltImage[] = [];
  try {
    for (let i = 0; i < IMAGES; i++) {
      const img = await buildImage({ layers: 1, layerSize: 4096, tag: 'v1' });
      images.push(img);
      const digest = await pushImage(img, registry.url, `signed/app${i}:v1`);
      await pushImage(img, registry.url, `plain/app${i}:v1`);
      await sign(`${registry.host}/signed/app${i}@${digest}`, keys, work);
    }
    const berth = await startBerth({
      config: {
        version: 0.1,
        log: { level: 'warn' },
        http: { workers: 1 },
        proxy: { remoteurl: registry.url },
        verify: [{ repositories: ['signed/*'], mode: 'enforce', cosign: { keys: [keys.pub] } }],
      },
    });
    try {
      const cold: Record<string, number[]> = { signed: [], plain: [] };
      const warm: Record<string, number[]> = { signed: [], plain: [] };
      for (let i = 0; i < IMAGES; i++) {
        for (const repo of ['plain', 'signed']) cold[repo]!.push(await get(`${berth.url}/v2/${repo}/app${i}/manifests/v1`));
      }
      for (let r = 0; r < WARM_ROUNDS; r++) {
        for (const repo of ['plain', 'signed']) warm[repo]!.push(await get(`${berth.url}/v2/${repo}/app${r % IMAGES}/manifests/v1`));
      }
      // Verdicts are reused for VERDICT_TTL_MS; after it each signature is read and checked again from the store.
      const again: Record<string, number[]> = { signed: [], plain: [] };
      await sleep(VERDICT_TTL_MS + 500);
      for (let i = 0; i < IMAGES; i++) {
        for (const repo of ['plain', 'signed']) again[repo]!.push(await get(`${berth.url}/v2/${repo}/app${i}/manifests/v1`));
      }
      const row = (label: string, xs: number[]) => `${label.padEnd(28)} p50 ${quantile(xs, 0.5).toFixed(2)} ms  p90 ${quantile(xs, 0.9).toFixed(2)} ms`;
      console.log(`manifest GET by tag, ${IMAGES} images, ${WARM_ROUNDS} warm requests each`);
      console.log(row('cold, not checked', cold['plain']!));
      console.log(row('cold, signature verified', cold['signed']!));
      console.log(row('warm, not checked', warm['plain']!));
      console.log(row('warm, verdict reused', warm['signed']!));
      console.log(row('warm, not checked (again)', again['plain']!));
      console.log(row('warm, verified from store', again['signed']!));
    } finally {
      await berth.stop();
    }
  } finally {
    await registry.stop();
    for (const img of images) await img.remove();
    await removeDir(work);
  }
}

await main();
