// Sales tax (seed 002 claim 12) against a real switch on 127.0.0.1: an operator sets rates; a vendor
// names the buyer's country on authorize (WebSocket, msgpack and JSON, and HTTP); the reply shows the
// tax next to the signed approval (whose canonical fields do not change); capture collects the tax,
// refunds give their share back; settlement reports taxWithheld; the report adds up per country and
// currency; bad input and the wrong principals are refused; the audit conserves money throughout.

import { afterAll, describe, expect, it } from 'vitest';
import {
  startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess,
} from './support/switch-process.ts';

let s: SwitchProcess | undefined;
afterAll(async () => {
  await s?.kill('SIGKILL');
});

async function conserved(sw: SwitchProcess) {
  const a = await http(sw, 'GET', '/v1/admin/audit', undefined, sw.adminToken);
  expect(a.body.conserved, JSON.stringify(a.body)).toBe(true);
  return a.body as { currencies: Record<string, { taxCollected: number; vendorPayable: number; paidOut: number }> };
}

const approvalKeys = ['authId', 'vendorId', 'amount', 'currency', 'approvedAt', 'expiresAt', 'idLast4', 'kid', 'root', 'index', 'size', 'path', 'sig'];

describe('sales tax', () => {
  it('refuses bad input and the wrong principals', async () => {
    s = await startSwitchProcess({});
    const f = await setupVendorAndUser(s, 100_000);
    for (const bad of [{}, { country: 'de', basisPoints: 100 }, { country: 'DEU', basisPoints: 100 }, { country: 'DE', basisPoints: -1 },
      { country: 'DE', basisPoints: 10_001 }, { country: 'DE', basisPoints: 1.5 }, { country: 'DE', basisPoints: '100' }, { country: 'DE', basisPoints: 1, extra: 1 }]) {
      const r = await http(s, 'PUT', '/v1/admin/tax-rates', bad, s.adminToken);
      expect({ bad, status: r.status, code: r.body.code }).toEqual({ bad, status: 400, code: 'BAD_REQUEST' });
    }
    for (const token of [f.apiKey, f.token, undefined]) {
      expect((await http(s, 'PUT', '/v1/admin/tax-rates', { country: 'DE', basisPoints: 1900 }, token)).status).toBe(401);
      expect((await http(s, 'GET', '/v1/admin/tax-rates', undefined, token)).status).toBe(401);
      expect((await http(s, 'GET', '/v1/admin/tax/report?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z', undefined, token)).status).toBe(401);
    }
    for (const q of ['', '?from=2026-01-01T00:00:00Z', '?from=2026-01-01T00:30:00Z&to=2026-01-02T00:00:00Z', '?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z',
      '?from=x&to=2026-01-01T00:00:00Z', '?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&country=DE']) {
      expect((await http(s, 'GET', '/v1/admin/tax/report' + q, undefined, s.adminToken)).status, q).toBe(400);
    }
    expect((await http(s, 'GET', '/v1/admin/tax/report?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', undefined, s.adminToken)).body.code).toBe('PERIOD_TOO_LONG');
    const id = await issueId(s, f.token);
    for (const country of ['de', 'DEU', 1, '']) {
      const r = await http(s, 'POST', '/v1/authorize', { id: id.id, code: id.code, amount: 100, currency: 'USD', idem: 'x', country }, f.apiKey);
      expect({ country, status: r.status }).toEqual({ country, status: 400 });
    }
    const v = await VendorClient.connect(s, f.apiKey);
    expect(await v.request({ op: 'authorize', id: id.id, code: id.code, amount: 100, currency: 'USD', idem: 'y', country: 'xx' })).toMatchObject({ status: 'error', code: 'BAD_REQUEST' });
    v.close();
  });

  it('rates, authorize with a country over WS and HTTP, capture, refund, settlement, report, audit', async () => {
    const sw = s!;
    const hourStart = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    expect((await http(sw, 'PUT', '/v1/admin/tax-rates', { country: 'DE', basisPoints: 1900 }, sw.adminToken)).body).toMatchObject({ country: 'DE', basisPoints: 1900 });
    expect((await http(sw, 'PUT', '/v1/admin/tax-rates', { country: 'FR', basisPoints: 2000 }, sw.adminToken)).status).toBe(200);
    expect((await http(sw, 'GET', '/v1/admin/tax-rates', undefined, sw.adminToken)).body.rates.map((r: { country: string; basisPoints: number }) => [r.country, r.basisPoints]))
      .toEqual([['DE', 1900], ['FR', 2000]]);
    const f = await setupVendorAndUser(sw, 100_000);

    // HTTP: 1190 in DE is 190 tax; the approval's canonical fields are unchanged.
    const id1 = await issueId(sw, f.token);
    const a1 = await http(sw, 'POST', '/v1/authorize', { id: id1.id, code: id1.code, amount: 1190, currency: 'USD', idem: 't1', country: 'DE' }, f.apiKey);
    expect(a1.body).toMatchObject({ status: 'approved', tax: { country: 'DE', basisPoints: 1900, amount: 190 } });
    expect(Object.keys(a1.body.approval).sort()).toEqual([...approvalKeys].sort());
    // WebSocket msgpack: 1200 in FR is 200 tax.
    const v = await VendorClient.connect(sw, f.apiKey);
    const id2 = await issueId(sw, f.token);
    const a2 = await v.request({ op: 'authorize', id: id2.id, code: id2.code, amount: 1200, currency: 'USD', idem: 't2', country: 'FR' });
    expect(a2).toMatchObject({ status: 'approved', tax: { country: 'FR', basisPoints: 2000, amount: 200 } });
    expect(Object.keys(a2.approval).sort()).toEqual([...approvalKeys].sort());
    // WebSocket JSON, a country without a rate: 0 tax, said so.
    const vj = await VendorClient.connect(sw, f.apiKey, false);
    const id3 = await issueId(sw, f.token);
    const a3 = await vj.request({ op: 'authorize', id: id3.id, code: id3.code, amount: 500, currency: 'USD', idem: 't3', country: 'JP' });
    expect(a3).toMatchObject({ status: 'approved', tax: { country: 'JP', basisPoints: 0, amount: 0 } });
    // No country: no tax field.
    const id4 = await issueId(sw, f.token);
    const a4 = await v.request({ op: 'authorize', id: id4.id, code: id4.code, amount: 300, currency: 'USD', idem: 't4' });
    expect(a4.status).toBe('approved');
    expect(a4.tax).toBeUndefined();

    // get shows it; capture collects it (a partial capture: the tax of the captured part).
    expect((await http(sw, 'GET', `/v1/auths/${a1.body.authId}`, undefined, f.apiKey)).body.tax).toEqual({ country: 'DE', basisPoints: 1900, amount: 190, collected: 0, refunded: 0 });
    expect((await http(sw, 'POST', '/v1/capture', { authId: a1.body.authId, idem: 'c1' }, f.apiKey)).body).toMatchObject({ captured: 1190, tax: { amount: 190 } });
    expect(await v.request({ op: 'capture', authId: a2.authId, amount: 600, idem: 'c2' })).toMatchObject({ captured: 600, tax: { country: 'FR', amount: 100 } });
    expect(await v.request({ op: 'capture', authId: a3.authId, idem: 'c3' })).toMatchObject({ captured: 500, tax: { amount: 0 } });
    expect(await v.request({ op: 'capture', authId: a4.authId, idem: 'c4' })).toMatchObject({ captured: 300 });
    let audit = await conserved(sw);
    expect(audit.currencies.USD.taxCollected).toBeGreaterThanOrEqual(290);
    const taxBefore = audit.currencies.USD.taxCollected;
    // A refund of 119 of a1 gives back floor(190 × 119 / 1190) = 19.
    expect((await http(sw, 'POST', '/v1/refund', { authId: a1.body.authId, amount: 119, idem: 'r1' }, f.apiKey)).body).toMatchObject({ refunded: 119, tax: { amount: 19 } });
    audit = await conserved(sw);
    expect(audit.currencies.USD.taxCollected).toBe(taxBefore - 19);

    // Settlement: captured and refunded gross, the tax withheld net of its refund.
    const st = await http(sw, 'POST', `/v1/admin/vendors/${f.vendorId}/settle`, {}, sw.adminToken);
    expect(st.body.currencies.USD).toMatchObject({ captured: 1190 + 600 + 500 + 300, refunded: 119, taxWithheld: 190 + 100 - 19, payout: 2590 - 119 - 271 });
    const u = st.body.currencies.USD;
    expect(u.opening + u.captured + u.payments - u.refunded - u.disputeCredits + u.disputeReversals - u.taxWithheld).toBe(u.payout + u.carried);

    // The report, this hour (and the next, should the clock have just turned).
    const report = await http(sw, 'GET', `/v1/admin/tax/report?from=${new Date(hourStart).toISOString()}&to=${new Date(hourStart + 2 * 3_600_000).toISOString()}`, undefined, sw.adminToken);
    expect(report.status).toBe(200);
    expect(report.body.rows).toEqual([
      { country: 'DE', currency: 'USD', sales: 1190, collected: 190, refunded: 19, net: 171, remitted: 0 },
      { country: 'FR', currency: 'USD', sales: 600, collected: 100, refunded: 0, net: 100, remitted: 0 },
      { country: 'JP', currency: 'USD', sales: 500, collected: 0, refunded: 0, net: 0, remitted: 0 },
    ]);
    await conserved(sw);
    v.close();
    vj.close();
  });
});
