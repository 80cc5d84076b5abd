// Automatic void: a hold that outlives the hold TTL is voided by the shard's sweeper, and its money
// returns to the user's available balance without anyone asking.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, issueId, VendorClient, type SwitchProcess } from './support/switch-process.ts';

let s: SwitchProcess;
beforeAll(async () => {
  s = await startSwitchProcess({ env: { ONCEPAY_HOLD_TTL_MS: '1000' } });
});
afterAll(async () => {
  await s?.kill();
});

describe('hold TTL', () => {
  it('voids an uncaptured hold once it outlives the TTL, and refuses to capture it', async () => {
    const f = await setupVendorAndUser(s, 1000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const id = await issueId(s, f.token);
    const a = await vendor.request({ op: 'authorize', id: id.id, code: id.code, amount: 400, currency: 'USD', idem: 'h1' });
    expect(a.status).toBe('approved');
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body).toMatchObject({ held: 400, available: 600 });
    // The sweeper runs every second; give it two passes after the TTL.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body).toMatchObject({ balance: 1000, held: 0, available: 1000 });
    expect((await http(s, 'GET', `/v1/auths/${a.authId}`, undefined, f.apiKey)).body).toMatchObject({ status: 'expired' });
    expect((await vendor.request({ op: 'capture', authId: a.authId, idem: 'h2' })).code).toBe('AUTH_EXPIRED');
    const audit = await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken);
    expect(audit.body.conserved).toBe(true);
    vendor.close();
  });
});
