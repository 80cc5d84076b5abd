// Settling vendors' tokens (seed 003 claims 1, 16) against a real switch on 127.0.0.1 with two
// shards: an operator prices tokens with a commission, a vendor earns tokens from users on both
// shards, GET /v1/vendor/tokens shows what they are worth, an operator's settlement redeems them on
// every shard under one id and pays their value in money (tokens-sold → payable → payout); a
// tokens-only vendor is settled by the scheduler when its tokens' value crosses its threshold; the
// audit stays conserved for money and tokens; bad input on the changed endpoints changes nothing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, type SwitchProcess, type Fixture } from './support/switch-process.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';

let s: SwitchProcess;
let a: Fixture; // a user (and vendor A, whose tokens the operator settles)
let b: Fixture; // a user on the other shard (and vendor B, settled by the scheduler)

const shardOf = (accountId: string) => partitionOfKeyedId(accountId) % 2;

beforeAll(async () => {
  s = await startSwitchProcess({ env: { ONCEPAY_SETTLEMENT_CHECK_MS: '200' } });
  a = await setupVendorAndUser(s, 10_000);
  for (;;) {
    b = await setupVendorAndUser(s, 10_000);
    if (shardOf(b.accountId) !== shardOf(a.accountId)) break;
  }
});
afterAll(async () => {
  await s?.kill('SIGKILL');
});

async function conserved() {
  const r = await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken);
  expect(r.body.conserved, JSON.stringify(r.body)).toBe(true);
  return r.body;
}
const vendorTokens = async (f: Fixture) => (await http(s, 'GET', '/v1/vendor/tokens', undefined, f.apiKey)).body;
const never = { thresholdMinor: 1_000_000_000, periodHours: 8784 }; // the scheduler leaves this vendor alone

describe('settling vendors\' tokens', () => {
  it('refuses bad input on the token price and the settlement settings, and changes nothing', async () => {
    for (const bad of [
      { currency: 'USD', priceMinor: 10, vendorCommissionBp: -1 }, { currency: 'USD', priceMinor: 10, vendorCommissionBp: 10_001 },
      { currency: 'USD', priceMinor: 10, vendorCommissionBp: 1.5 }, { currency: 'USD', priceMinor: 10, vendorCommissionBp: '100' },
      { currency: 'USD', priceMinor: 10, vendorCommission: 100 },
    ]) {
      const r = await http(s, 'PUT', '/v1/admin/token-prices', bad, s.adminToken);
      expect({ bad, status: r.status, code: r.body.code }).toEqual({ bad, status: 400, code: 'BAD_REQUEST' });
    }
    expect((await http(s, 'GET', '/v1/tokens/prices')).body.prices).toEqual([]);
    for (const bad of [{ ...never, tokenCurrency: 'usd' }, { ...never, tokenCurrency: 5 }, { ...never, tokenCurrency: null }, { ...never, tokenCurrency: 'TOKEN' }]) {
      const r = await http(s, 'PUT', '/v1/vendor/settlement-settings', bad, a.apiKey);
      expect({ bad, status: r.status, code: r.body.code }).toEqual({ bad, status: 400, code: 'BAD_REQUEST' });
    }
    // The default: tokens settle in USD; no price yet, so no value.
    const listed = (await http(s, 'GET', '/v1/vendor/settlements', undefined, a.apiKey)).body.settings;
    expect(listed).toMatchObject({ tokenCurrency: 'USD', tokenPrice: null });
    expect(await vendorTokens(a)).toMatchObject({ tokens: 0, value: { currency: 'USD', amountMinor: null } });
  });

  it('redeems a vendor\'s tokens from both shards under one settlement and pays their value in money', async () => {
    const price = await http(s, 'PUT', '/v1/admin/token-prices', { currency: 'USD', priceMinor: 10, vendorCommissionBp: 1_000 }, s.adminToken);
    expect(price.body).toEqual({ status: 'ok', currency: 'USD', priceMinor: 10, vendorCommissionBp: 1_000 });
    expect((await http(s, 'GET', '/v1/tokens/prices')).body.prices).toMatchObject([{ currency: 'USD', priceMinor: 10, vendorCommissionBp: 1_000 }]);
    for (const f of [a, b]) expect((await http(s, 'PUT', '/v1/vendor/settlement-settings', { ...never, tokenCurrency: 'USD' }, f.apiKey)).status).toBe(200);
    expect((await http(s, 'POST', '/v1/tokens/buy', { count: 20, currency: 'USD', idem: 'ba' }, a.token)).body).toMatchObject({ status: 'bought', amount: 200 });
    expect((await http(s, 'POST', '/v1/tokens/buy', { count: 50, currency: 'USD', idem: 'bb' }, b.token)).body).toMatchObject({ status: 'bought', amount: 500 });
    // Vendor A earns 7 tokens in a's shard and 31 in b's: 9 cents each, rounded down per shard.
    expect((await http(s, 'POST', '/v1/tokens/spend', { vendorId: a.vendorId, count: 7, idem: 'sa' }, a.token)).body.status).toBe('spent');
    expect((await http(s, 'POST', '/v1/tokens/spend', { vendorId: a.vendorId, count: 31, idem: 'sb' }, b.token)).body.status).toBe('spent');
    expect(await vendorTokens(a)).toMatchObject({
      tokens: 38, value: { currency: 'USD', amountMinor: 63 + 279, priceMinor: 10, vendorCommissionBp: 1_000 },
    });

    const rec = await http(s, 'POST', `/v1/admin/vendors/${a.vendorId}/settle`, {}, s.adminToken);
    expect(rec.status).toBe(200);
    expect(rec.body.currencies.USD).toMatchObject({ tokensRedeemed: 38, tokenProceeds: 342, payout: 342, carried: 0 });
    expect(rec.body.shards.map((p: { shard: number }) => p.shard)).toEqual([0, 1]);
    expect(await vendorTokens(a)).toMatchObject({ tokens: 0, value: { amountMinor: 0 } });
    // A second settlement finds nothing to redeem.
    const again = await http(s, 'POST', `/v1/admin/vendors/${a.vendorId}/settle`, {}, s.adminToken);
    expect(again.body.currencies).toEqual({});

    const audit = await conserved();
    expect(audit.tokens).toMatchObject({ bought: 70, held: 32, vendor: 0, redeemed: 38, inFlight: 0 });
    // 700 paid for tokens, 342 paid to the vendor for them: 358 stays the switch's (commission and rounding).
    expect(audit.currencies.USD).toMatchObject({ tokensSold: 358, paidOut: 342 });

    // The record, the CSV, the vendor's history and statement show the proceeds.
    const listed = (await http(s, 'GET', '/v1/vendor/settlements', undefined, a.apiKey)).body.settlements;
    expect(listed[0].currencies.USD).toMatchObject({ tokensRedeemed: 38, tokenProceeds: 342 });
    const csv = await fetch(s.url + '/v1/vendor/settlements?format=csv', { headers: { authorization: `Bearer ${a.apiKey}` } }).then((r) => r.text());
    expect(csv.split(/\r?\n/)[0]).toMatch(/,tokensRedeemed,tokenProceeds$/);
    expect(csv).toMatch(/,38,342\r?\n/);
    const hist = (await http(s, 'GET', '/v1/vendor/history?kind=token-proceeds', undefined, a.apiKey)).body;
    expect(hist.entries.map((e: { amount: number }) => e.amount).sort((x: number, y: number) => x - y)).toEqual([63, 279]);
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const st = await http(s, 'GET', `/v1/vendor/statement?from=${from}&to=${to}`, undefined, a.apiKey);
    expect(st.status, JSON.stringify(st.body)).toBe(200);
    expect(st.body.currencies.USD).toMatchObject({ tokenProceeds: 342, payouts: 342, net: 0 });
  });

  it('settles a tokens-only vendor when its tokens\' value crosses its threshold', async () => {
    expect((await http(s, 'PUT', '/v1/vendor/settlement-settings', { thresholdMinor: 100, periodHours: 8784, tokenCurrency: 'USD' }, b.apiKey)).status).toBe(200);
    // 11 tokens are worth 99: below the threshold, nothing happens.
    expect((await http(s, 'POST', '/v1/tokens/spend', { vendorId: b.vendorId, count: 11, idem: 'sc' }, a.token)).body.status).toBe('spent');
    await new Promise((res) => setTimeout(res, 800));
    expect((await http(s, 'GET', '/v1/vendor/settlements', undefined, b.apiKey)).body.settlements).toEqual([]);
    // One more (on the other shard): 99 + 9 = 108.
    expect((await http(s, 'POST', '/v1/tokens/spend', { vendorId: b.vendorId, count: 1, idem: 'sd' }, b.token)).body.status).toBe('spent');
    await expect.poll(async () => (await http(s, 'GET', '/v1/vendor/settlements', undefined, b.apiKey)).body.settlements.length, { timeout: 10_000 }).toBe(1);
    const [rec] = (await http(s, 'GET', '/v1/vendor/settlements', undefined, b.apiKey)).body.settlements;
    expect(rec.trigger).toBe('threshold');
    expect(rec.currencies.USD).toMatchObject({ tokensRedeemed: 12, tokenProceeds: 108, payout: 108 });
    const audit = await conserved();
    expect(audit.tokens).toMatchObject({ redeemed: 50, vendor: 0 });
    expect(audit.currencies.USD).toMatchObject({ tokensSold: 250, paidOut: 450 });
  });
});
