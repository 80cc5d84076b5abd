// Micropayment tokens against a real switch on 127.0.0.1: an operator sets a price, a user buys
// tokens (money leaves for tokens-sold), receives our incentive tokens and a vendor's (out of the
// tokens that vendor earned), spends at a vendor incentive first, replays by idem; bad input and
// the wrong principals are refused; the audit is conserved for money and for tokens, apart.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, type SwitchProcess, type Fixture } from './support/switch-process.ts';

let s: SwitchProcess;
let u: Fixture; // a user (and vendor A)
let w: Fixture; // another user (and vendor B)

beforeAll(async () => {
  s = await startSwitchProcess();
  u = await setupVendorAndUser(s, 10_000);
  w = await setupVendorAndUser(s, 0);
});
afterAll(async () => {
  await s?.kill('SIGKILL');
});

const tokens = async (f: Fixture) => (await http(s, 'GET', '/v1/tokens', undefined, f.token)).body;
const balance = async (f: Fixture) => (await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body.balance as number;

describe('tokens', () => {
  it('buys at the operator\'s price, grants, spends incentive first, and the audit holds for money and tokens', async () => {
    expect((await http(s, 'POST', '/v1/tokens/buy', { count: 10, currency: 'USD', idem: 'early' }, u.token)).body).toEqual({ status: 'declined', code: 'TOKEN_PRICE_UNSET' });
    expect((await http(s, 'PUT', '/v1/admin/token-prices', { currency: 'USD', priceMinor: 7 }, s.adminToken)).status).toBe(200);
    const bought = await http(s, 'POST', '/v1/tokens/buy', { count: 100, currency: 'USD', idem: 'buy-1' }, u.token);
    expect(bought.body).toMatchObject({ status: 'bought', count: 100, priceMinor: 7, amount: 700, balance: 9_300, tokens: { bought: 100, incentive: 0 } });
    // A new price does not change a replay of the purchase.
    expect((await http(s, 'PUT', '/v1/admin/token-prices', { currency: 'USD', priceMinor: 9 }, s.adminToken)).status).toBe(200);
    expect((await http(s, 'POST', '/v1/tokens/buy', { count: 100, currency: 'USD', idem: 'buy-1' }, u.token)).body).toEqual(bought.body);
    expect(await balance(u)).toBe(9_300);
    expect((await http(s, 'POST', '/v1/tokens/buy', { count: 1, currency: 'EUR', idem: 'buy-eur' }, u.token)).body).toMatchObject({ code: 'TOKEN_PRICE_UNSET' });
    expect((await http(s, 'POST', '/v1/tokens/buy', { count: 1, currency: 'USD', idem: 'buy-w' }, w.token)).body).toEqual({ status: 'declined', code: 'INSUFFICIENT_FUNDS' });

    // Our grant, expiring tomorrow; spent before any bought token.
    const grant = await http(s, 'POST', '/v1/admin/tokens/grant', { accountId: u.accountId, count: 20, expiresAt: new Date(Date.now() + 86_400_000).toISOString(), idem: 'g1' }, s.adminToken);
    expect(grant.body).toMatchObject({ status: 'granted', count: 20, by: 'operator', tokens: { bought: 100, incentive: 20, total: 120 } });
    const spent = await http(s, 'POST', '/v1/tokens/spend', { vendorId: w.vendorId, count: 25, idem: 'sp1' }, u.token);
    expect(spent.body).toMatchObject({ status: 'spent', fromIncentive: 20, fromBought: 5, tokens: { bought: 95, incentive: 0 } });
    expect((await http(s, 'POST', '/v1/tokens/spend', { vendorId: w.vendorId, count: 25, idem: 'sp1' }, u.token)).body).toEqual(spent.body);
    expect((await http(s, 'POST', '/v1/tokens/spend', { vendorId: w.vendorId, count: 96, idem: 'sp2' }, u.token)).body).toEqual({ status: 'declined', code: 'TOKENS_INSUFFICIENT' });

    // Vendor B grants out of what it earned in the user's shard (25 tokens), never more.
    expect((await http(s, 'POST', '/v1/vendor/tokens/grant', { accountId: u.accountId, count: 26, idem: 'vg1' }, w.apiKey)).body)
      .toEqual({ status: 'declined', code: 'VENDOR_TOKENS_INSUFFICIENT' });
    expect((await http(s, 'POST', '/v1/vendor/tokens/grant', { accountId: u.accountId, count: 5, idem: 'vg2' }, w.apiKey)).body)
      .toMatchObject({ status: 'granted', by: w.vendorId, tokens: { incentive: 5, incentiveLots: [{ count: 5, expiresAt: null }] } });
    expect(await tokens(u)).toMatchObject({ accountId: u.accountId, bought: 95, incentive: 5, total: 100 });

    const audit = (await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body;
    expect(audit.conserved, JSON.stringify(audit)).toBe(true);
    expect(audit.currencies.USD.tokensSold).toBe(700);
    expect(audit.currencies.TOKEN).toBeUndefined();
    expect(audit.tokens).toMatchObject({ bought: 100, granted: 20, held: 95, incentive: 5, vendor: 20, expired: 0 });
    // The user's history shows the money leg of the purchase.
    const hist = (await http(s, 'GET', '/v1/accounts/me/history', undefined, u.token)).body;
    expect(JSON.stringify(hist)).toContain('token-purchase');
  });

  it('refuses bad input and the wrong principals', async () => {
    const rows: Array<[string, string, Record<string, unknown>, string, number]> = [
      ['POST', '/v1/tokens/buy', { count: 0, currency: 'USD', idem: 'x' }, u.token, 400],
      ['POST', '/v1/tokens/buy', { count: 1.5, currency: 'USD', idem: 'x' }, u.token, 400],
      ['POST', '/v1/tokens/buy', { count: 1, currency: 'usd', idem: 'x' }, u.token, 400],
      ['POST', '/v1/tokens/buy', { count: 1, currency: 'USD', idem: 'x', price: 1 }, u.token, 400],
      ['POST', '/v1/tokens/buy', { count: 1, currency: 'USD', idem: 'x' }, u.apiKey, 401],
      ['POST', '/v1/tokens/spend', { vendorId: 'vd_0000' + '0'.repeat(16), count: 1, idem: 'x' }, u.token, 400],
      ['POST', '/v1/admin/tokens/grant', { accountId: u.accountId, count: 1, expiresAt: '2000-01-01T00:00:00Z', idem: 'x' }, s.adminToken, 400],
      ['POST', '/v1/admin/tokens/grant', { accountId: u.accountId, count: 1, idem: 'x' }, u.token, 401],
      ['POST', '/v1/vendor/tokens/grant', { accountId: u.accountId, count: 1, idem: 'x' }, u.token, 401],
      ['PUT', '/v1/admin/token-prices', { currency: 'USD', priceMinor: 1 }, u.apiKey, 401],
    ];
    for (const [method, path, body, token, status] of rows) {
      expect((await http(s, method as 'POST', path, body, token)).status, `${path} ${JSON.stringify(body)}`).toBe(status);
    }
    expect(await tokens(u)).toMatchObject({ bought: 95, incentive: 5 });
  });
});
