// Currencies at purchase against a real switch on 127.0.0.1 (issue 5 item 3): an operator sets a
// USD->EUR rate, a user who holds only USD buys in EUR from a WebSocket vendor; the vendor's approval
// is in EUR and verifies offline, the conversion (USD held, rate, spread, as-of) is shown beside it;
// a partial capture and refunds at the authorization's rate; a replay after a rate change answers the
// first answer; a shard that restarts gets the rate table again before it decides anything; the
// audit stays conserved per currency.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess, type Fixture } from './support/switch-process.ts';
import { partitionOfKeyedId } from '../workers/partitions.ts';
import { verifyApproval } from '../hsm-sim/verify-approval.ts';

let s: SwitchProcess;
let u: Fixture;
beforeAll(async () => {
  s = await startSwitchProcess({ env: { ONCEPAY_FAULT_INJECTION: '1' } });
  u = await setupVendorAndUser(s, 10_000);
});
afterAll(async () => {
  await s?.kill('SIGKILL');
});

const approvalKeys = ['authId', 'vendorId', 'amount', 'currency', 'approvedAt', 'expiresAt', 'idLast4', 'kid', 'root', 'index', 'size', 'path', 'sig'];
const audit = async () => {
  const a = (await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body;
  expect(a.conserved, JSON.stringify(a.problems ?? a)).toBe(true);
  return a;
};
const me = async () => (await http(s, 'GET', '/v1/accounts/me', undefined, u.token)).body;

describe('currencies at purchase', () => {
  it('a USD user buys in EUR: EUR approval verified offline, USD held, capture and refunds at the recorded rate, audit green', async () => {
    const asOf = '2026-11-23T12:00:00.000Z';
    const id0 = await issueId(s, u.token);
    const v = await VendorClient.connect(s, u.apiKey);
    // No rate yet: as before, a currency the user does not hold is declined.
    expect(await v.request({ op: 'authorize', id: id0.id, code: id0.code, amount: 1_000, currency: 'EUR', idem: 'e0' }))
      .toMatchObject({ status: 'declined', code: 'CURRENCY_MISMATCH' });
    expect((await http(s, 'PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'EUR', rate: '0.92', spreadBasisPoints: 100, asOf }, s.adminToken)).status).toBe(200);

    const id = await issueId(s, u.token);
    const a = await v.request({ op: 'authorize', id: id.id, code: id.code, amount: 1_000, currency: 'EUR', idem: 'e1' });
    expect(a).toMatchObject({
      status: 'approved', amount: 1_000, currency: 'EUR',
      fx: { held: { currency: 'USD', amount: 1_098 }, rate: '0.92', spreadBasisPoints: 100, asOf },
    });
    // The signed approval is the vendor's, in EUR, its fields unchanged; it verifies with the public keys alone.
    expect(Object.keys(a.approval).sort()).toEqual([...approvalKeys].sort());
    expect(a.approval).toMatchObject({ amount: 1_000, currency: 'EUR' });
    const keys = (await http(s, 'GET', '/v1/hsm/keys')).body.keys;
    expect(verifyApproval(a.approval, keys)).toEqual({ ok: true });
    expect(await me()).toMatchObject({ currency: 'USD', balance: 10_000, held: 1_098, wallets: [] });

    // The operator changes the rate: a replay answers the first answer, a new purchase uses the new rate.
    expect((await http(s, 'PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'EUR', rate: '0.5', asOf }, s.adminToken)).status).toBe(200);
    expect(await v.request({ op: 'authorize', id: id.id, code: id.code, amount: 1_000, currency: 'EUR', idem: 'e1', rid: a.rid })).toEqual(a);
    // The JSON encoding shows the conversion too.
    const vj = await VendorClient.connect(s, u.apiKey, false);
    const id2 = await issueId(s, u.token);
    const b = await vj.request({ op: 'authorize', id: id2.id, code: id2.code, amount: 100, currency: 'EUR', idem: 'e2' });
    expect(b).toMatchObject({ status: 'approved', fx: { held: { currency: 'USD', amount: 200 }, rate: '0.5', spreadBasisPoints: 0 } });
    expect(verifyApproval(b.approval, keys)).toEqual({ ok: true });
    expect((await vj.request({ op: 'void', authId: b.authId, idem: 'e2v' })).status).toBe('voided');
    vj.close();

    // Capture 6.00 of 10.00 EUR: ceil(6.00 EUR at 0.92 less 1%) = 6.59 USD; the rest released.
    expect(await v.request({ op: 'capture', authId: a.authId, amount: 600, idem: 'c1' })).toMatchObject({
      status: 'captured', captured: 600, currency: 'EUR', fx: { charged: { currency: 'USD', amount: 659 }, released: { currency: 'USD', amount: 439 } },
    });
    expect(await me()).toMatchObject({ balance: 10_000 - 659, held: 0 });
    let au = await audit();
    expect(au.currencies.EUR).toMatchObject({ vendorPayable: 600, fxPosition: -600 });
    expect(au.currencies.USD.fxPosition).toBe(659);
    // Refunds at the recorded rate: floor(659 × 300 / 600) = 329, then the rest, 330.
    expect(await v.request({ op: 'refund', authId: a.authId, amount: 300, idem: 'r1' })).toMatchObject({ refunded: 300, fx: { returned: { amount: 329 } } });
    expect((await http(s, 'POST', '/v1/refund', { authId: a.authId, idem: 'r2' }, u.apiKey)).body).toMatchObject({ refunded: 300, fx: { returned: { amount: 330 } } });
    expect(await me()).toMatchObject({ balance: 10_000, held: 0 });
    expect((await http(s, 'GET', `/v1/auths/${a.authId}`, undefined, u.apiKey)).body).toMatchObject({
      status: 'refunded', currency: 'EUR', fx: { held: { currency: 'USD', amount: 1_098 }, rate: '0.92', charged: 659, givenBack: 659 },
    });
    // The user's history is in USD and names the EUR purchase.
    const hist = (await http(s, 'GET', '/v1/accounts/me/history?limit=3', undefined, u.token)).body.entries;
    expect(hist[0]).toMatchObject({ kind: 'fx-return', amount: 330, currency: 'USD', authId: a.authId, purchase: { amount: 1_000, currency: 'EUR' } });
    au = await audit();
    expect(au.currencies.EUR).toMatchObject({ vendorPayable: 0, fxPosition: 0 });
    // Settlement sees the vendor's side in EUR only.
    const st = await http(s, 'POST', `/v1/admin/vendors/${u.vendorId}/settle`, {}, s.adminToken);
    expect(st.body.currencies.EUR).toMatchObject({ captured: 600, refunded: 600, payout: 0 });
    expect(st.body.currencies.USD).toBeUndefined();
    v.close();
  });

  it('a secondary wallet transfers and pays; the receiver gets a wallet on arrival; history and statements by currency', async () => {
    const w = await setupVendorAndUser(s, 0);
    expect((await http(s, 'POST', '/v1/accounts/me/wallets', { currency: 'CHF' }, u.token)).status).toBe(201);
    expect((await http(s, 'POST', `/v1/admin/accounts/${u.accountId}/fund`, { amount: 3_000, currency: 'CHF', idem: 'fchf' }, s.adminToken)).status).toBe(200);
    const sent = await http(s, 'POST', '/v1/transfers', { to: { accountId: w.accountId }, amount: 1_000, currency: 'CHF', idem: 'x1' }, u.token);
    expect(sent.body).toMatchObject({ status: 'sent', amount: 1_000, currency: 'CHF', balance: 2_000 });
    // Delivered through the outbox (perhaps to another shard): the receiver's CHF wallet appears.
    const deadline = Date.now() + 10_000;
    let got: any;
    do {
      got = (await http(s, 'GET', '/v1/accounts/me', undefined, w.token)).body;
      if (got.wallets.length > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    } while (Date.now() < deadline);
    expect(got.wallets).toEqual([{ currency: 'CHF', balance: 1_000, held: 0, available: 1_000 }]);
    expect((await http(s, 'POST', '/v1/payments', { vendorId: u.vendorId, amount: 500, currency: 'CHF', idem: 'pay1' }, u.token)).body)
      .toMatchObject({ status: 'paid', balance: 1_500 });
    const hist = (await http(s, 'GET', '/v1/accounts/me/history?currency=CHF', undefined, u.token)).body.entries;
    expect(hist.map((e: any) => [e.kind, e.amount, e.currency])).toEqual([['payment', 500, 'CHF'], ['transfer-out', 1_000, 'CHF'], ['fund', 3_000, 'CHF']]);
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const st = await http(s, 'GET', `/v1/accounts/me/statement?from=${from}&to=${to}&currency=CHF`, undefined, u.token);
    expect(st.body).toMatchObject({ currency: 'CHF', opening: { balance: 0 }, closing: { balance: 1_500 } });
    expect((await http(s, 'GET', `/v1/accounts/me/statement?from=${from}&to=${to}&currency=chf`, undefined, u.token)).status).toBe(400);
    expect((await http(s, 'GET', `/v1/accounts/me/statement?from=${from}&to=${to}&currency=GBP`, undefined, u.token)).status).toBe(404);
    // A receiver with no wallet in the currency and no room for another is refused before the debit.
    for (const c of ['GBP', 'JPY', 'SEK', 'NOK', 'DKK', 'PLN', 'CZK']) {
      expect((await http(s, 'POST', '/v1/accounts/me/wallets', { currency: c }, w.token)).status).toBe(201);
    }
    const full = await http(s, 'POST', '/v1/transfers', { to: { accountId: w.accountId }, amount: 100, currency: 'EUR', idem: 'x2' }, u.token);
    expect(full).toMatchObject({ status: 409, body: { code: 'CURRENCY_MISMATCH' } });
    expect((await me()).balance).toBe(10_000);
    await audit();
  });

  it('a restarted shard gets the rate table before it decides anything', async () => {
    const shard = partitionOfKeyedId(u.accountId) % 2;
    expect((await http(s, 'POST', `/v1/admin/faults/shards/${shard}/crash`, {}, s.adminToken)).status).toBe(202);
    const deadline = Date.now() + 20_000;
    while (!s.output().includes(`shard ${shard} exited`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    while ((await http(s, 'GET', '/healthz')).status !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const id = await issueId(s, u.token);
    const r = await http(s, 'POST', '/v1/authorize', { id: id.id, code: id.code, amount: 250, currency: 'EUR', idem: 'after' }, u.apiKey);
    expect(r.body).toMatchObject({ status: 'approved', fx: { held: { currency: 'USD', amount: 500 }, rate: '0.5' } });
    await audit();
  });
});
