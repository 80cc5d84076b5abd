// HSM signing-key rotation: approvals signed before a rotation still verify under their old kid
// (and replay byte for byte), new ones are signed with the new kid. And expiry across a restart:
// IDs and holds carry absolute expiry times, so a restarted switch expires them on time.

import { afterAll, describe, expect, it } from 'vitest';
import { startSwitchProcess, http, setupVendorAndUser, issueId, tempDataDir, VendorClient, type SwitchProcess } from './support/switch-process.ts';
import { verifyApproval } from '../hsm-sim/verify-approval.ts';

let s: SwitchProcess | undefined;
afterAll(async () => {
  await s?.kill();
});

describe('HSM key rotation', () => {
  it('keeps old approvals verifiable and signs new ones with the new key', async () => {
    s = await startSwitchProcess();
    const f = await setupVendorAndUser(s, 10_000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const id1 = await issueId(s, f.token);
    const before = await vendor.request({ op: 'authorize', id: id1.id, code: id1.code, amount: 10, currency: 'USD', idem: 'r1', rid: 'r1' });
    const oldKid = before.approval.kid;

    expect((await http(s, 'POST', '/v1/admin/hsm/rotate', {}, f.token)).status).toBe(401);
    const rotated = await http(s, 'POST', '/v1/admin/hsm/rotate', {}, s.adminToken);
    expect(rotated.status).toBe(200);
    expect(rotated.body.kid).not.toBe(oldKid);

    const keys = (await http(s, 'GET', '/v1/hsm/keys')).body.keys as Array<{ kid: string }>;
    expect(keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, rotated.body.kid]));
    const id2 = await issueId(s, f.token);
    const after = await vendor.request({ op: 'authorize', id: id2.id, code: id2.code, amount: 10, currency: 'USD', idem: 'r2' });
    expect(after.approval.kid).toBe(rotated.body.kid);
    expect(verifyApproval(after.approval, keys as never)).toEqual({ ok: true });
    expect(verifyApproval(before.approval, keys as never)).toEqual({ ok: true });
    // A replay of the old approval is the first answer, old kid and all.
    expect(await vendor.request({ op: 'authorize', id: id1.id, code: id1.code, amount: 10, currency: 'USD', idem: 'r1', rid: 'r1' })).toEqual(before);
    vendor.close();
    await s.kill();
    s = undefined;
  });
});

describe('expiry across a restart', () => {
  it('expires IDs and holds on time even when the switch was down in between', async () => {
    const dataDir = tempDataDir('oncepay-clock-');
    s = await startSwitchProcess({ dataDir, env: { ONCEPAY_HOLD_TTL_MS: '2000' } });
    const f = await setupVendorAndUser(s, 1000);
    const vendor = await VendorClient.connect(s, f.apiKey);
    const shortId = await issueId(s, f.token, { ttlSeconds: 2 });
    const held = await issueId(s, f.token);
    const a = await vendor.request({ op: 'authorize', id: held.id, code: held.code, amount: 300, currency: 'USD', idem: 'h' });
    expect(a.status).toBe('approved');
    vendor.close();
    await s.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 2500)); // both expire while the switch is down
    s = await startSwitchProcess({ dataDir, env: { ONCEPAY_HOLD_TTL_MS: '2000' } });
    const v2 = await VendorClient.connect(s, f.apiKey);
    expect((await v2.request({ op: 'authorize', id: shortId.id, code: shortId.code, amount: 1, currency: 'USD', idem: 'late' })).code).toBe('ID_EXPIRED');
    expect((await v2.request({ op: 'capture', authId: a.authId, idem: 'late-capture' })).code).toBe('AUTH_EXPIRED');
    expect((await http(s, 'GET', '/v1/accounts/me', undefined, f.token)).body).toMatchObject({ balance: 1000, held: 0 });
    expect((await http(s, 'GET', '/v1/admin/audit', undefined, s.adminToken)).body.conserved).toBe(true);
    v2.close();
  });
});
