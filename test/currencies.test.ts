// Currencies against a real switch on 127.0.0.1: a user opens wallets, an operator funds one and sets
// rates, the user converts (floor in the target minor unit, what rounds to zero refused, replay by
// idem at the first rate), a vendor charging yen draws on the JPY wallet, the audit stays conserved per
// currency with the fx positions; bad input and the wrong principals are refused.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, issueId, type SwitchProcess, type Fixture } from './support/switch-process.ts';

let s: SwitchProcess;
let u: Fixture; // a USD user (and vendor A)

beforeAll(async () => {
  s = await startSwitchProcess();
  u = await setupVendorAndUser(s, 10_000);
});
afterAll(async () => {
  await s?.kill('SIGKILL');
});

const me = async (f: Fixture) => (await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body;

describe('currencies', () => {
  it('opens wallets, funds one, sets rates, converts with the floor, and the audit holds per currency', async () => {
    expect((await me(u)).wallets).toEqual([]);
    const opened = await http(s, 'POST', '/v1/accounts/me/wallets', { currency: 'JPY' }, u.token);
    expect(opened.status).toBe(201);
    expect(opened.body.wallets).toEqual([{ currency: 'JPY', balance: 0, held: 0, available: 0 }]);
    expect((await http(s, 'POST', '/v1/accounts/me/wallets', { currency: 'KWD' }, u.token)).status).toBe(201);
    // An operator funds the KWD wallet: the currency chooses it.
    const funded = await http(s, 'POST', `/v1/admin/accounts/${u.accountId}/fund`, { amount: 2_000, currency: 'KWD', idem: 'fk1' }, s.adminToken);
    expect(funded.status).toBe(200);
    expect((await http(s, 'POST', `/v1/admin/accounts/${u.accountId}/fund`, { amount: 1, currency: 'EUR', idem: 'fe1' }, s.adminToken)).body)
      .toMatchObject({ code: 'CURRENCY_MISMATCH' });

    expect((await http(s, 'POST', '/v1/accounts/me/convert', { from: 'USD', to: 'JPY', amount: 100, idem: 'c0' }, u.token)).body)
      .toEqual({ status: 'declined', code: 'FX_RATE_UNSET' });
    const put = await http(s, 'PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'JPY', rate: '150.00', spreadBasisPoints: 100, asOf: '2026-11-23T12:00:00Z' }, s.adminToken);
    expect(put.body).toEqual({ status: 'ok', from: 'USD', to: 'JPY', rate: '150', spreadBasisPoints: 100, asOf: '2026-11-23T12:00:00.000Z' });
    expect((await http(s, 'PUT', '/v1/admin/fx-rates', { from: 'KWD', to: 'USD', rate: '3.25', asOf: '2026-11-23T12:00:00Z' }, s.adminToken)).status).toBe(200);
    const rates = (await http(s, 'GET', '/v1/fx/rates')).body.rates;
    expect(rates).toEqual(expect.arrayContaining([expect.objectContaining({ from: 'USD', to: 'JPY', rate: '150', spreadBasisPoints: 100 })]));

    // 10.01 USD at 150 less 1%: 1486.485 JPY, floored to 1486.
    const c1 = await http(s, 'POST', '/v1/accounts/me/convert', { from: 'USD', to: 'JPY', amount: 1_001, idem: 'c1' }, u.token);
    expect(c1.body).toMatchObject({ status: 'converted', from: 'USD', to: 'JPY', debited: 1_001, credited: 1_486, spreadBasisPoints: 100 });
    // A new rate does not change a replay.
    await http(s, 'PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'JPY', rate: '151', spreadBasisPoints: 0, asOf: '2026-11-23T12:01:00Z' }, s.adminToken);
    expect((await http(s, 'POST', '/v1/accounts/me/convert', { from: 'USD', to: 'JPY', amount: 1_001, idem: 'c1' }, u.token)).body).toEqual(c1.body);
    // 0.001 KWD is 0.325 cents: refused, nothing taken.
    expect((await http(s, 'POST', '/v1/accounts/me/convert', { from: 'KWD', to: 'USD', amount: 1, idem: 'c2' }, u.token)).body)
      .toEqual({ status: 'declined', code: 'FX_AMOUNT_TOO_SMALL' });
    expect((await http(s, 'POST', '/v1/accounts/me/convert', { from: 'KWD', to: 'USD', amount: 1_001, idem: 'c3' }, u.token)).body)
      .toMatchObject({ status: 'converted', credited: 325 });
    expect((await http(s, 'POST', '/v1/accounts/me/convert', { from: 'KWD', to: 'USD', amount: 1_000, idem: 'c4' }, u.token)).body)
      .toEqual({ status: 'declined', code: 'INSUFFICIENT_FUNDS' });

    const a = await me(u);
    expect(a.balance).toBe(10_000 - 1_001 + 325);
    expect(a.wallets).toEqual([
      { currency: 'JPY', balance: 1_486, held: 0, available: 1_486 },
      { currency: 'KWD', balance: 999, held: 0, available: 999 },
    ]);
    const audit = (await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body;
    expect(audit.conserved, JSON.stringify(audit)).toBe(true);
    expect(audit.currencies.KWD).toMatchObject({ funding: 2_000, fxPosition: 1_001 });
    expect(audit.currencies.JPY).toMatchObject({ funding: 0, fxPosition: -1_486 });

    // A vendor charging yen draws on the JPY wallet; a currency with no wallet is declined.
    const id = await issueId(s, u.token);
    const p1 = await http(s, 'POST', '/v1/authorize', { id: id.id, code: id.code, amount: 400, currency: 'JPY', idem: 'p1' }, u.apiKey);
    expect(p1.body).toMatchObject({ status: 'approved', amount: 400, currency: 'JPY' });
    expect((await me(u)).wallets[0]).toEqual({ currency: 'JPY', balance: 1_486, held: 400, available: 1_086 });
    expect((await http(s, 'POST', '/v1/capture', { authId: p1.body.authId, amount: 300, idem: 'p1c' }, u.apiKey)).body).toMatchObject({ status: 'captured' });
    expect((await me(u)).wallets[0]).toEqual({ currency: 'JPY', balance: 1_186, held: 0, available: 1_186 });
    expect((await me(u)).balance).toBe(10_000 - 1_001 + 325);
    const id2 = await issueId(s, u.token);
    expect((await http(s, 'POST', '/v1/authorize', { id: id2.id, code: id2.code, amount: 100, currency: 'GBP', idem: 'p2' }, u.apiKey)).body)
      .toMatchObject({ status: 'declined', code: 'CURRENCY_MISMATCH' });
    expect((await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body.conserved).toBe(true);
  });

  it('refuses bad input and the wrong principals', async () => {
    const asOf = '2026-11-23T12:00:00Z';
    const rows: Array<[string, string, Record<string, unknown>, string, number]> = [
      ['PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'EUR', rate: 0.92, asOf }, s.adminToken, 400],           // a number, not a string
      ['PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'EUR', rate: '0', asOf }, s.adminToken, 400],
      ['PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'EUR', rate: '1.234567890123', asOf }, s.adminToken, 400], // 13 digits
      ['PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'USD', rate: '1', asOf }, s.adminToken, 400],
      ['PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'XXX', rate: '1', asOf }, s.adminToken, 400],
      ['PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'EUR', rate: '1', spreadBasisPoints: 1001, asOf }, s.adminToken, 400],
      ['PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'EUR', rate: '1', asOf: 'yesterday' }, s.adminToken, 400],
      ['PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'EUR', rate: '1', asOf: '2999-01-01T00:00:00Z' }, s.adminToken, 400],
      ['PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'EUR', rate: '1', asOf, extra: 1 }, s.adminToken, 400],
      ['PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'EUR', rate: '1', asOf }, u.token, 401],
      ['PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'EUR', rate: '1', asOf }, u.apiKey, 401],
      ['POST', '/v1/accounts/me/wallets', { currency: 'usd' }, u.token, 400],
      ['POST', '/v1/accounts/me/wallets', { currency: 'EUR' }, u.apiKey, 401],
      ['POST', '/v1/accounts/me/wallets', { currency: 'EUR' }, s.adminToken, 401],
      ['POST', '/v1/accounts/me/convert', { from: 'USD', to: 'JPY', amount: 0, idem: 'x' }, u.token, 400],
      ['POST', '/v1/accounts/me/convert', { from: 'USD', to: 'JPY', amount: 1.5, idem: 'x' }, u.token, 400],
      ['POST', '/v1/accounts/me/convert', { from: 'USD', to: 'USD', amount: 1, idem: 'x' }, u.token, 400],
      ['POST', '/v1/accounts/me/convert', { from: 'USD', to: 'JPY', amount: 1, idem: 'x', rate: '999' }, u.token, 400],
      ['POST', '/v1/accounts/me/convert', { from: 'USD', to: 'JPY', amount: 1, idem: 'x' }, u.apiKey, 401],
    ];
    for (const [method, path, body, token, status] of rows) {
      expect((await http(s, method as 'POST', path, body, token)).status, `${path} ${JSON.stringify(body)}`).toBe(status);
    }
    // A pair with a rate whose target wallet is not opened.
    await http(s, 'PUT', '/v1/admin/fx-rates', { from: 'USD', to: 'EUR', rate: '0.92', asOf }, s.adminToken);
    expect((await http(s, 'POST', '/v1/accounts/me/convert', { from: 'USD', to: 'EUR', amount: 100, idem: 'nw' }, u.token)).body)
      .toEqual({ status: 'declined', code: 'WALLET_UNKNOWN' });
  });
});
