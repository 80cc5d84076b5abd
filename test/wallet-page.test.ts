/// <reference lib="dom" />
// The wallet page in a real headless Chromium (Debian's, driven by playwright-core) against a real
// switch on 127.0.0.1: a user signs up on the page, gets a payment ID in confirmation mode, a
// scripted vendor authorizes it, and the prompt on the page is approved, declined with Escape, or
// left to time out, while the vendor sees the matching pushed answer. A screenshot is kept in
// reports/wallet.png (git-ignored) for a person to look at.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startSwitchProcess, http, VendorClient, type SwitchProcess } from './support/switch-process.ts';
import { verifyApproval } from '../hsm-sim/verify-approval.ts';

const chromiumPath = '/usr/bin/chromium';
const reports = fileURLToPath(new URL('../reports/', import.meta.url));
const password = 'correct horse battery';
/** Every wait in this file is bounded by this (the page and the switch are both local). */
const waitMs = 10_000;
/** The short confirmation window of the time-out run. */
const shortConfirmMs = 3000;

let normal: SwitchProcess;
let short: SwitchProcess;
let browser: Browser | undefined;
const contexts: BrowserContext[] = [];
let seq = 0;

async function until<T>(what: string, probe: () => T | undefined | null | false, ms = waitMs): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A fresh page in its own browser context (its own sessionStorage: another device, in effect). */
async function newPage(s: SwitchProcess): Promise<{ page: Page; errors: string[]; cspViolations: string[] }> {
  const context = await browser!.newContext({ viewport: { width: 1200, height: 1000 }, locale: 'en-US', timezoneId: 'UTC' });
  contexts.push(context);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: s.url });
  const page = await context.newPage();
  page.setDefaultTimeout(waitMs);
  const errors: string[] = [];
  const cspViolations: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  await page.goto(`${s.url}/wallet`);
  return { page, errors, cspViolations };
}

async function signUp(page: Page, email: string, pin?: string): Promise<string> {
  await page.getByLabel('Email', { exact: true }).nth(1).fill(email);
  await page.getByLabel('Password (8 characters or more)').fill(password);
  if (pin !== undefined) await page.getByLabel(/^PIN for confirming payments/).fill(pin);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForFunction(() => document.getElementById('account-id')!.textContent!.startsWith('ac_'));
  return (await page.locator('#account-id').innerText()).trim();
}

async function signIn(page: Page, email: string, pw: string): Promise<void> {
  await page.getByLabel('Email', { exact: true }).first().fill(email);
  await page.getByLabel('Password', { exact: true }).fill(pw);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function fund(s: SwitchProcess, accountId: string, amount: number): Promise<void> {
  const r = await http(s, 'POST', `/v1/admin/accounts/${accountId}/fund`, { amount, currency: 'USD', idem: `fund-${seq++}` }, s.adminToken);
  expect(r.status).toBe(200);
}

async function newVendor(s: SwitchProcess, name: string): Promise<{ vendorId: string; apiKey: string }> {
  const r = await http(s, 'POST', '/v1/admin/vendors', { name }, s.adminToken);
  expect(r.status).toBe(201);
  return r.body;
}

/** Get an ID on the page in the given mode and read its digits and code off the card. */
async function getId(page: Page, modeLabel: string): Promise<{ id: string; code: string }> {
  const before = await page.locator('#payid-digits').textContent();
  await page.getByLabel(modeLabel, { exact: true }).check();
  await page.getByRole('button', { name: 'Get a payment ID' }).click();
  await page.locator('#payid').waitFor({ state: 'visible' });
  // A new ID replaces the one on the card: wait for it, not the card.
  await page.waitForFunction((old) => document.getElementById('payid-digits')!.textContent !== old, before);
  const grouped = await page.locator('#payid-digits').innerText();
  expect(grouped).toMatch(/^\d{4} \d{4} \d{4} \d{4} \d{3}$/);
  return { id: grouped.replace(/\s/g, ''), code: (await page.locator('#payid-code').innerText()).trim() };
}

const dialogOpen = (page: Page) => page.evaluate(() => (document.getElementById('prompt') as HTMLDialogElement).open);

/** A pushed {"event":"auth"} for this authorization on the vendor's session. */
const pushedAuth = (vendor: VendorClient, authId: string) =>
  until(`the pushed result of ${authId}`, () => vendor.unsolicited.find((m) => m.event === 'auth' && m.authId === authId));

describe.skipIf(!existsSync(chromiumPath) && !process.env.CI)('wallet page in Chromium', () => {
  beforeAll(async () => {
    [normal, short] = await Promise.all([
      startSwitchProcess(),
      startSwitchProcess({ env: { ONCEPAY_CONFIRM_TIMEOUT_MS: String(shortConfirmMs) } }),
    ]);
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await Promise.all([normal?.kill(), short?.kill()]);
  });

  it('serves the page with its security headers', async () => {
    const res = await fetch(`${normal.url}/wallet`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${normal.port}`);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
  });

  it('approve: the prompt appears, the user approves with the password, the vendor gets a verifiable approval, the page shows the hold', async () => {
    const { page, errors, cspViolations } = await newPage(normal);
    const email = `wallet${process.pid}.${seq++}@example.com`;
    const accountId = await signUp(page, email);
    // The token is in sessionStorage, never in localStorage or the URL.
    expect(await page.evaluate(() => [localStorage.length, sessionStorage.getItem('oncepay.token')?.slice(0, 4)])).toEqual([0, 'out_']);
    expect(page.url()).toBe(`${normal.url}/wallet`);
    await page.locator('#conn[data-state=live]').waitFor();
    // The handshake the page makes, under its CSP: offered "oncepay.v1" beside the bearer, the
    // switch selects "oncepay.v1", so the token is not echoed back.
    expect(await page.evaluate(() => new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/v1/user`, ['oncepay.v1', 'oncepay.bearer.' + sessionStorage.getItem('oncepay.token')]);
      ws.onopen = () => { resolve(ws.protocol); ws.close(); };
      ws.onerror = () => resolve('refused');
    }))).toBe('oncepay.v1');

    // An operator funds the account; the page shows it.
    await fund(normal, accountId, 50_000);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(() => page.locator('#available').innerText()).toBe('$500.00');

    const { id, code } = await getId(page, 'Ask me to confirm');
    expect(await page.locator('#payid-expiry').innerText()).toMatch(/^(10:00|9:5\d)$/);
    await page.getByRole('button', { name: 'Copy number' }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(id);

    // The same user signed in on a second device: both see the prompt; the first answer wins.
    const other = await newPage(normal);
    await signIn(other.page, email, password);
    await other.page.locator('#conn[data-state=live]').waitFor();

    const shop = await newVendor(normal, 'Corner Shop');
    const vendor = await VendorClient.connect(normal, shop.apiKey, false);
    try {
      const pending = await vendor.request({ op: 'authorize', id, code, amount: 1250, currency: 'USD', idem: `o${seq++}`, description: 'Two coffees' });
      expect(pending).toMatchObject({ status: 'pending', amount: 1250, currency: 'USD', mode: 'confirm' });
      expect(Date.parse(pending.decideBy)).toBeGreaterThan(Date.now());

      const dialog = page.getByRole('dialog', { name: 'Confirm this payment?' });
      await dialog.waitFor();
      await other.page.getByRole('dialog').waitFor();
      expect(await page.locator('#prompt-vendor').innerText()).toBe('Corner Shop');
      expect(await page.locator('#prompt-amount').innerText()).toBe('$12.50');
      expect(await page.locator('#prompt-description').innerText()).toContain('Two coffees');
      expect(await page.locator('#prompt-last4').innerText()).toBe(id.slice(-4));
      expect(await page.locator('#prompt-timer').innerText()).toMatch(/^\d+:\d\d$/);
      // Focus moved into the dialog, on the field to type into: keyboard only from here.
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('prompt-secret');

      // A wrong password is refused and the prompt stays.
      await page.keyboard.type('not my password');
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator('#prompt-error').innerText()).toContain('wrong');
      expect(await dialogOpen(page)).toBe(true);

      await page.getByLabel('PIN or password').fill(password);
      await dialog.getByRole('button', { name: 'Approve' }).click();

      const pushed = await pushedAuth(vendor, pending.authId);
      expect(pushed).toMatchObject({ event: 'auth', status: 'approved', amount: 1250, currency: 'USD' });
      expect(pushed.approval).toMatchObject({ authId: pending.authId, vendorId: shop.vendorId, amount: 1250, currency: 'USD', idLast4: id.slice(-4) });
      const keys = (await http(normal, 'GET', '/v1/hsm/keys')).body.keys;
      expect(verifyApproval(pushed.approval, keys)).toEqual({ ok: true });

      // The dialog closed on both pages; the other one says it was answered elsewhere.
      await expect.poll(() => dialogOpen(page)).toBe(false);
      await expect.poll(() => dialogOpen(other.page)).toBe(false);
      await expect.poll(() => other.page.locator('#note').innerText()).toContain('another device');

      // The hold is on the page, and the balance shows it.
      const hold = page.locator('#holds tr', { hasText: 'Corner Shop' });
      await hold.waitFor();
      expect(await hold.innerText()).toContain('$12.50');
      await expect.poll(() => page.locator('#available').innerText()).toBe('$487.50');
      expect(await page.locator('#held').innerText()).toBe('$12.50');
      await expect.poll(() => page.locator('#history').innerText()).toContain('Corner Shop');
      await expect.poll(() => page.locator('#feed').innerText()).toContain('approved');
    } finally {
      vendor.close();
    }
    expect(errors).toEqual([]);
    expect(other.errors).toEqual([]);
    expect(cspViolations).toEqual([]);
  });

  it('Escape declines (USER_DECLINED); the next purchase is approved with the PIN, keyboard only', async () => {
    const { page, errors } = await newPage(normal);
    const accountId = await signUp(page, `wallet${process.pid}.${seq++}@example.com`, '4321');
    await fund(normal, accountId, 10_000);
    await page.locator('#conn[data-state=live]').waitFor();
    const { id, code } = await getId(page, 'Ask me to confirm');
    const shop = await newVendor(normal, 'Night Market');
    const vendor = await VendorClient.connect(normal, shop.apiKey, false);
    try {
      const pending = await vendor.request({ op: 'authorize', id, code, amount: 700, currency: 'USD', idem: `o${seq++}` });
      expect(pending).toMatchObject({ status: 'pending' });
      await page.getByRole('dialog').waitFor();
      await page.keyboard.press('Escape');
      expect(await pushedAuth(vendor, pending.authId)).toMatchObject({ event: 'auth', status: 'declined', code: 'USER_DECLINED' });
      await expect.poll(() => dialogOpen(page)).toBe(false);
      await expect.poll(() => page.locator('#available').innerText()).toBe('$100.00');
      await expect.poll(() => page.locator('#feed').innerText()).toContain('you declined');

      // The account's setting, saved on the page, decides for an ID that leaves it to the account.
      await page.getByLabel('New payments by default').selectOption({ label: 'Ask me to confirm each one' });
      await page.getByRole('button', { name: 'Save settings' }).click();
      await expect.poll(() => page.locator('#note').innerText()).toContain('Settings saved');
      expect((await http(normal, 'GET', '/v1/accounts/me', undefined, await page.evaluate(() => sessionStorage.getItem('oncepay.token')!))).body.mode).toBe('confirm');
      const second = await getId(page, 'Account setting');
      const again = await vendor.request({ op: 'authorize', id: second.id, code: second.code, amount: 900, currency: 'USD', idem: `o${seq++}` });
      expect(again).toMatchObject({ status: 'pending' });
      await page.getByRole('dialog').waitFor();
      await page.keyboard.type('4321');
      await page.keyboard.press('Enter');
      const pushed = await pushedAuth(vendor, again.authId);
      expect(pushed).toMatchObject({ event: 'auth', status: 'approved', amount: 900 });
      expect(verifyApproval(pushed.approval, (await http(normal, 'GET', '/v1/hsm/keys')).body.keys)).toEqual({ ok: true });
      await expect.poll(() => dialogOpen(page)).toBe(false);
      await expect.poll(() => page.locator('#available').innerText()).toBe('$91.00');
    } finally {
      vendor.close();
    }
    expect(errors).toEqual([]);
  });

  it('the README walk-through: examples/confirm-purchase.ts waits while the user approves on the page, then verifies', async () => {
    const { page, errors } = await newPage(normal);
    const accountId = await signUp(page, `wallet${process.pid}.${seq++}@example.com`);
    await fund(normal, accountId, 5000);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(() => page.locator('#available').innerText()).toBe('$50.00');
    await page.locator('#conn[data-state=live]').waitFor();
    const { id, code } = await getId(page, 'Ask me to confirm');
    const shop = await newVendor(normal, 'Corner Shop');

    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/confirm-purchase.ts', '--url', normal.url, '--key', shop.apiKey,
      '--id', id, '--code', code, '--amount', '1250', '--description', 'Two coffees'], { cwd: fileURLToPath(new URL('..', import.meta.url)) });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    try {
      await until('the script to wait for the user', () => out.includes('pending: the user has until'), 20_000);
      await page.getByRole('dialog').waitFor();
      expect(await page.locator('#prompt-description').innerText()).toContain('Two coffees');
      await page.getByLabel('PIN or password').fill(password);
      await page.getByRole('button', { name: 'Approve' }).click();
      expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), waitMs))])).toBe(0);
      expect(out).toMatch(/APPROVED 1250 USD \(au_\w+\); signature verified offline/);
      await page.locator('#holds tr', { hasText: 'Corner Shop' }).waitFor();
    } finally {
      child.kill();
    }
    expect(errors).toEqual([]);
  });

  it('time-out: the countdown runs out, the vendor gets CONFIRM_TIMEOUT, the dialog closes, the money is available again', async () => {
    const { page, errors } = await newPage(short);
    const accountId = await signUp(page, `wallet${process.pid}.${seq++}@example.com`);
    await fund(short, accountId, 10_000);
    await page.locator('#conn[data-state=live]').waitFor();
    const { id, code } = await getId(page, 'Ask me to confirm');
    const shop = await newVendor(short, 'Slow Shop');
    const vendor = await VendorClient.connect(short, shop.apiKey, false);
    try {
      const pending = await vendor.request({ op: 'authorize', id, code, amount: 2500, currency: 'USD', idem: `o${seq++}` });
      expect(pending).toMatchObject({ status: 'pending' });
      expect(Date.parse(pending.decideBy) - Date.now()).toBeLessThanOrEqual(shortConfirmMs + 500);
      await page.getByRole('dialog').waitFor();
      // The hold is placed while the user decides.
      await expect.poll(() => page.locator('#available').innerText()).toBe('$75.00');
      const first = await page.locator('#prompt-timer').innerText();
      expect(first).toMatch(/^0:0[0-3]$/);

      const pushed = await pushedAuth(vendor, pending.authId);
      expect(pushed).toMatchObject({ event: 'auth', status: 'declined', code: 'CONFIRM_TIMEOUT' });
      await expect.poll(() => dialogOpen(page)).toBe(false);
      await expect.poll(() => page.locator('#note').innerText()).toContain('Time ran out');
      await expect.poll(() => page.locator('#available').innerText()).toBe('$100.00');
      expect(await page.locator('#held').innerText()).toBe('$0.00');
    } finally {
      vendor.close();
    }
    expect(errors).toEqual([]);
  });

  it('bad input: a wrong password and a short one show errors, nothing breaks; a notified purchase in the live feed; screenshot', async () => {
    const { page, errors, cspViolations } = await newPage(normal);
    await signIn(page, 'nobody@example.com', 'wrong password');
    await expect.poll(() => page.getByRole('alert').first().innerText()).toContain('do not match');
    expect(await page.locator('#signed-out').isVisible()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    await page.getByLabel('Email', { exact: true }).nth(1).fill('short@example.com');
    await page.getByLabel('Password (8 characters or more)').fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => page.locator('#signup-error').innerText()).toContain('8 characters');

    // Signed in, a malformed amount limit is refused on the page, before the switch.
    const accountId = await signUp(page, `wallet${process.pid}.${seq++}@example.com`);
    await fund(normal, accountId, 123_456);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByLabel(/Largest amount/).fill('12.345');
    await page.getByRole('button', { name: 'Get a payment ID' }).click();
    await expect.poll(() => page.locator('#id-error').innerText()).toContain('25.00');
    await page.getByLabel(/Largest amount/).fill('25');
    await page.locator('#conn[data-state=live]').waitFor();
    const { id, code } = await getId(page, 'Notify me');

    // Notification mode: the purchase is approved at once, and the page hears of it.
    const shop = await newVendor(normal, 'Book Nook');
    const vendor = await VendorClient.connect(normal, shop.apiKey, false);
    try {
      const over = await vendor.request({ op: 'authorize', id, code, amount: 2501, currency: 'USD', idem: `o${seq++}` });
      expect(over).toMatchObject({ status: 'declined', code: 'AMOUNT_OVER_LIMIT' });
      const ok = await vendor.request({ op: 'authorize', id, code, amount: 1999, currency: 'USD', idem: `o${seq++}` });
      expect(ok).toMatchObject({ status: 'approved', amount: 1999 });
    } finally {
      vendor.close();
    }
    const line = page.locator('#feed li', { hasText: 'approved' });
    await line.waitFor();
    expect(await line.innerText()).toMatch(/Book Nook · \$19\.99 · ID …\d{4} · approved/);
    await expect.poll(() => page.locator('#available').innerText()).toBe('$1,214.57');
    await page.locator('#holds tr', { hasText: 'Book Nook' }).waitFor();
    expect(errors).toEqual([]);
    expect(cspViolations).toEqual([]);

    // History pages: 20 entries a page, then "More" for the rest.
    for (let i = 0; i < 20; i++) await fund(normal, accountId, 1);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(() => page.locator('#history tr').count()).toBe(20);
    await page.getByRole('button', { name: 'More' }).click();
    await expect.poll(() => page.locator('#history tr').count()).toBe(22); // 21 top-ups and a hold
    expect(await page.getByRole('button', { name: 'More' }).isVisible()).toBe(false);
    mkdirSync(reports, { recursive: true });
    await page.screenshot({ path: `${reports}wallet.png`, fullPage: true });
  });
});
