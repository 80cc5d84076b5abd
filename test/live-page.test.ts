/// <reference lib="dom" />
// The built-in live page in a real headless Chromium (Debian's, driven by playwright-core): it loads,
// its four charts draw, and its numbers move while the switch is under load. A screenshot is kept
// in reports/ (git-ignored) for a person to look at.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { startSwitchProcess, setupVendorAndUser, http, VendorClient, type SwitchProcess } from './support/switch-process.ts';
import { bucketQuantile } from '../switch/live.ts';

const chromiumPath = '/usr/bin/chromium';
const reports = fileURLToPath(new URL('../reports/', import.meta.url));

describe('bucketQuantile', () => {
  it('interpolates inside the bucket that holds the quantile', () => {
    expect(bucketQuantile([1, 2, 4], [0, 10, 0, 0], 0.5)).toBeCloseTo(1.5);
    expect(bucketQuantile([1, 2, 4], [10, 0, 0, 0], 0.99)).toBeCloseTo(0.99);
    expect(bucketQuantile([1, 2, 4], [0, 0, 0, 5], 0.5)).toBe(4);
    expect(bucketQuantile([1, 2, 4], [0, 0, 0, 0], 0.5)).toBeNull();
  });
});

let s: SwitchProcess;
let browser: Browser | undefined;

// Skipped only on a developer machine without Chromium; CI installs it and must run this.
describe.skipIf(!existsSync(chromiumPath) && !process.env.CI)('live page in Chromium', () => {
  beforeAll(async () => {
    s = await startSwitchProcess();
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await s?.kill();
  });

  it('loads, draws its charts, and its numbers move under load', async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${s.url}/dashboard`);
    expect(await page.title()).toContain('Oncepay');

    // Load for a few seconds: approvals and some declines.
    const f = await setupVendorAndUser(s, 10_000_000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const seen = new Set<string>();
    for (let round = 0; round < 6; round++) {
      const ids = (await http(s, 'POST', '/v1/ids', { idem: `live${round}`, count: 200 }, f.token)).body.ids as Array<{ id: string; code: string }>;
      await Promise.all(ids.map((id, i) =>
        vendor.request({ op: 'authorize', id: id.id, code: i % 5 === 0 ? '999' : id.code, amount: 10, currency: 'USD', idem: `l${round}-${i}` })));
      seen.add(await page.locator('#n-approved').innerText());
      await page.waitForTimeout(700);
    }
    vendor.close();
    await page.waitForFunction(() => Number(document.body.dataset.points ?? 0) >= 3, undefined, { timeout: 10_000 });
    seen.add(await page.locator('#n-approved').innerText());

    // The numbers moved: more than one distinct value, and some approvals per second were shown.
    expect(seen.size).toBeGreaterThan(1);
    expect([...seen].some((v) => Number(v.replace(/[^\d]/g, '')) > 0)).toBe(true);
    expect(await page.locator('#n-p99').innerText()).not.toBe('–');
    // Four charts drew onto canvases of real size.
    const canvases = await page.locator('#charts canvas').evaluateAll((els) => els.map((c) => (c as HTMLCanvasElement).width));
    expect(canvases.length).toBeGreaterThanOrEqual(4);
    for (const w of canvases) expect(w).toBeGreaterThan(100);
    expect(errors).toEqual([]);
    mkdirSync(reports, { recursive: true });
    await page.screenshot({ path: `${reports}live-dashboard.png`, fullPage: true });
  });
});
