/**
 * @module e2e/dashboard.test — the dashboard in headless Chromium against a real berth: pages show real data after a pull
 * through berth, a warm-up started from the form completes (checked from the central registry's side), nothing is fetched
 * from anywhere but berth. Screenshots go to test-artifacts/dashboard/.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { type Berth, berthCli, startBerth } from '../fixtures/berth.js';
import { type Browser, startBrowser } from '../fixtures/browser.js';
import { skopeoPull } from '../fixtures/clients.js';
import { type BuiltImage, buildImage, pushImage } from '../fixtures/image.js';
import { makeTempDir, removeDir } from '../fixtures/proc.js';
import { type Registry, startRegistry } from '../fixtures/registry.js';

const MiB = 1 << 20;
const SHOTS = 'dashboard';

describe('dashboard in headless Chromium', { timeout: 240_000 }, () => {
  let reg: Registry;
  let app: BuiltImage;
  let tools: BuiltImage;
  let berth: Berth;
  let browser: Browser;
  let page: Page;
  let work: string;
  /** Every URL the page requested, and every error it reported. */
  const requested: string[] = [];
  const pageErrors: string[] = [];

  const api = async <T>(p: string): Promise<T> => (await (await fetch(`${berth.url}${p}`)).json()) as T;
  const go = async (hash: string) => {
    await page.click(`nav a[href="${hash}"]`);
    await page.waitForFunction((h) => location.hash === h, hash);
  };

  before(async () => {
    reg = await startRegistry();
    app = await buildImage({ layers: 2, layerSize: 2 * MiB, tag: 'v1' });
    tools = await buildImage({ layers: 2, layerSize: MiB, tag: 'v2' });
    await pushImage(app, reg.url, 'xing/app:v1');
    await pushImage(tools, reg.url, 'xing/tools:v2');
    work = await makeTempDir('berth-dash');
    // xing/app is checked in warn mode (served, unsigned): the images view shows its verification state.
    const pub = `${work}/cosign.pub`;
    await writeFile(pub, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }));
    berth = await startBerth({
      config: {
        version: 0.1,
        storage: { maxsize: '1GiB' },
        upstreams: [{ name: 'harbor', remoteurl: reg.url, default: true }],
        verify: [{ repositories: ['xing/app'], mode: 'warn', cosign: { keys: [pub] } }],
      },
    });
    // Real traffic first: one cold pull (misses) and one warm pull (hits) with a real client.
    await skopeoPull(`${berth.host}/xing/app:v1`, `${work}/pull1`);
    await skopeoPull(`${berth.host}/xing/app:v1`, `${work}/pull2`);
    browser = await startBrowser();
    page = await browser.newPage();
    page.on('request', (r) => requested.push(r.url()));
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
  });

  after(async () => {
    await browser?.close();
    await berth?.stop();
    await reg?.stop();
    await app?.remove();
    await tools?.remove();
    if (work) await removeDir(work);
  });

  it("overview: hit ratio, WAN bytes saved, store usage against its limit and the upstream, from berth's own stats", async () => {
    await page.goto(`${berth.url}/ui`);
    assert.equal(new URL(page.url()).pathname, '/ui/', '/ui redirects to /ui/');
    await page.waitForSelector('[data-testid=hit-ratio] .card-value');
    const stats = await api<{ hitRatio: number; requests: { hit: number }; store: { blobs: number } }>('/api/v1/stats');
    assert.ok(stats.requests.hit > 0, 'the second pull was served from cache');
    const ratio = await page.textContent('[data-testid=hit-ratio] .card-value');
    assert.equal(ratio, `${(stats.hitRatio * 100).toFixed(stats.hitRatio >= 0.999 || stats.hitRatio === 0 ? 0 : 1)} %`);
    assert.match((await page.textContent('[data-testid=wan-saved] .card-value')) ?? '', /\d+(\.\d+)? (B|KiB|MiB)/);
    assert.match((await page.textContent('[data-testid=store]')) ?? '', new RegExp(`of 1\\.00 GiB limit · ${stats.store.blobs} blobs`));
    const upstream = await page.textContent('[data-testid=upstreams] tbody tr');
    assert.match(upstream ?? '', /harbor/);
    assert.match(upstream ?? '', /up/);
    assert.equal(await page.locator('figure.chart canvas').count(), 2, 'both charts drawn');
    await browser.screenshot(page, SHOTS, 'overview');
  });

  it('images: the pulled image is listed with its digest, size and verification state, and the search filters', async () => {
    await go('#/images');
    const row = page.locator('[data-testid=images] tbody tr', { hasText: 'xing/app' });
    await row.first().waitFor();
    const text = (await row.first().textContent()) ?? '';
    assert.match(text, /v1/);
    assert.ok(text.includes(app.manifestDigest.slice(0, 19)), `row shows ${app.manifestDigest.slice(0, 19)}: ${text}`);
    assert.match(text, /unsigned/, 'the verify: entry (warn) found no signature');
    await page.fill('[data-testid=image-search]', 'no-such-repo');
    await page.waitForSelector('text=Nothing cached matches "no-such-repo"');
    await page.fill('[data-testid=image-search]', 'app');
    await row.first().waitFor();
    await browser.screenshot(page, SHOTS, 'images');
  });

  it('warm-up: a job started from the form shows progress and completes; the image is then served with the central registry down', async () => {
    await go('#/warm');
    const before = (await reg.requests()).length;
    await page.fill('textarea[name=images]', 'xing/tools:v2');
    await page.click('button[type=submit]');
    const job = page.locator('[data-testid=warm-job]').first();
    await job.waitFor();
    await page.waitForSelector('[data-testid=warm-job][data-state=done], [data-testid=warm-job][data-state=failed]', { timeout: 120_000 });
    assert.equal(await job.getAttribute('data-state'), 'done', (await job.textContent()) ?? '');
    const n = tools.blobs.length;
    assert.ok(((await job.textContent()) ?? '').includes(`${n} / ${n} blobs`), 'every blob of the image fetched');
    await browser.screenshot(page, SHOTS, 'warm');

    // Upstream side: each of the image's blobs crossed once, fetched by the warm job.
    const gets = (await reg.requests()).slice(before).filter((r) => r.method === 'GET' && r.status === 200);
    for (const b of tools.blobs) assert.equal(gets.filter((r) => r.uri.includes(b.digest)).length, 1, b.digest);
    await reg.down();
    try {
      const pulled = await skopeoPull(`${berth.host}/xing/tools:v2`, `${work}/warm-pull`);
      assert.equal(pulled.manifestDigest, tools.manifestDigest);
    } finally {
      await reg.up();
    }
  });

  it('images and queue: the warmed image appears; the push queue page shows this berth has nothing queued', async () => {
    await go('#/images');
    await page.fill('[data-testid=image-search]', 'tools');
    await page.locator('[data-testid=images] tbody tr', { hasText: 'xing/tools' }).first().waitFor();
    await go('#/queue');
    await page.waitForSelector('[data-testid=queue-count]');
    assert.equal(await page.textContent('[data-testid=queue-count]'), '0 items waiting');
    await browser.screenshot(page, SHOTS, 'queue');
  });

  it('bundles: an import through the admin API is listed with its images and blob counts', async () => {
    const bundle = `${work}/app-bundle`;
    const exported = await berthCli(['export', '--from-registry', reg.url, '-q', '-o', bundle, 'xing/app:v1']);
    assert.equal(exported.code, 0, exported.stderr);
    const imported = await berthCli(['import', '--server', berth.url, '-q', bundle]);
    assert.equal(imported.code, 0, imported.stderr);
    await go('#/bundles');
    await page.waitForSelector('[data-testid=bundles-count]');
    assert.equal(await page.textContent('[data-testid=bundles-count]'), '1 bundle imported');
    const row = page.locator('[data-testid=bundles] tbody tr', { hasText: 'xing/app:v1' }).first();
    await row.waitFor();
    assert.match((await row.textContent()) ?? '', /app-bundle/);
    await browser.screenshot(page, SHOTS, 'bundles');
  });

  it('loaded nothing from outside berth and reported no errors', () => {
    assert.ok(requested.length > 5);
    const foreign = requested.filter((u) => !u.startsWith(`${berth.url}/`) && !u.startsWith('data:'));
    assert.deepEqual(foreign, []);
    assert.deepEqual(pageErrors, []);
  });
});
