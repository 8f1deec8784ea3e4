/** @module e2e/fleet-dashboard.test — the hub's Sites page in headless Chromium: the token form, both sites up, a pre-heat job, a stopped site going stale, paging. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { Berth } from '../fixtures/berth.js';
import { type Browser, startBrowser } from '../fixtures/browser.js';
import { type BuiltImage, buildImage, pushImage } from '../fixtures/image.js';
import { type Registry, startRegistry } from '../fixtures/registry.js';
import { HUB_TOKEN, hubCall, pollUntil, simulatedReport, sitesUp, startHub, startSite } from '../fixtures/fleet.js';

describe('Sites page in headless Chromium', { timeout: 180_000 }, () => {
  let reg: Registry;
  let img: BuiltImage;
  let hub: Berth;
  let sites: Berth[] = [];
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    reg = await startRegistry();
    img = await buildImage({ layers: 1, layerSize: 512 * 1024, tag: 'v1' });
    await pushImage(img, reg.url, 'xing/app:v1');
    hub = await startHub();
    sites = await Promise.all(['north', 'south'].map((n) => startSite(n, hub.url, { remoteurl: reg.url })));
    await sitesUp(hub.url, ['north', 'south']);
    const job = await hubCall(hub.url, 'POST', '/oapi/v1/jobs', {
      type: 'preheat',
      args: { type: 'image', url: `${reg.url}/v2/xing/app/manifests/v1`, headers: {} },
    });
    await pollUntil(hub.url, `/oapi/v1/jobs/${job.json.id}`, (j) => j.state === 'SUCCESS');
    browser = await startBrowser();
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await browser?.close();
    await Promise.all(sites.map((s) => s.stop()));
    await hub?.stop();
    await reg?.stop();
    await img?.remove();
  });

  it('asks for the hub token, then lists both sites up and the job that reached them', async () => {
    await page.goto(`${hub.url}/ui/#/sites`);
    await page.waitForSelector('[data-testid=hub-token]');
    await page.fill('input[name=token]', 'wrong');
    await page.click('button[type=submit]');
    await page.waitForSelector('text=The token was not accepted.');
    await page.fill('input[name=token]', HUB_TOKEN);
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-testid=sites] tbody tr');
    assert.equal(await page.textContent('[data-testid=sites-count]'), '2 sites, 2 up, 0 stale');
    for (const name of ['north', 'south']) {
      const row = (await page.textContent(`[data-testid=sites] tr[data-site=${name}]`)) ?? '';
      assert.match(row, /up/);
      assert.match(row, /default: up/);
    }
    const job = (await page.textContent('[data-testid=fleet-jobs] tbody tr')) ?? '';
    assert.match(job, /SUCCESS/);
    assert.match(job, /north: success; south: success/);
    await browser.screenshot(page, 'dashboard', 'sites');
  });

  it('a site that stops reporting shows as stale after three intervals', async () => {
    await sites[1]!.stop();
    sites = [sites[0]!];
    await page.waitForSelector('[data-testid=sites] tr[data-site=south] .badge-bad', { timeout: 30_000 });
    assert.match((await page.textContent('[data-testid=sites] tr[data-site=south]')) ?? '', /stale/);
    assert.equal(await page.textContent('[data-testid=sites-count]'), '2 sites, 1 up, 1 stale');
    assert.deepEqual(pageErrors, []);
  });

  it('pages through the sites 100 at a time, with the counts of the whole fleet', async () => {
    const names = Array.from({ length: 120 }, (_, i) => `sim-${String(i).padStart(3, '0')}`);
    for (const name of names) {
      const r = await hubCall(hub.url, 'POST', '/api/v1/fleet/poll', { report: simulatedReport(name, 600_000), results: [], working: [] });
      assert.equal(r.status, 200);
    }
    await page.waitForFunction(() => document.querySelector('[data-testid=sites-count]')?.textContent === '122 sites, 121 up, 1 stale', undefined, {
      timeout: 15_000,
    });
    assert.equal(await page.locator('[data-testid=sites] tbody tr').count(), 100);
    assert.equal(await page.locator('[data-testid=sites] tr[data-site=south]').count(), 0, 'south sorts after the first page');
    await page.click('[data-testid=sites-pages] >> text=Next');
    await page.waitForSelector('[data-testid=sites] tr[data-site=south]');
    assert.equal(await page.locator('[data-testid=sites] tbody tr').count(), 22);
    assert.ok(await page.locator('[data-testid=sites-pages] >> text=Next').isDisabled(), 'no page after the last');
    await page.click('[data-testid=sites-pages] >> text=Previous');
    await page.waitForSelector('[data-testid=sites] tr[data-site=north]');
    assert.deepEqual(pageErrors, []);
  });
});
